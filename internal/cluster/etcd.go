package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"
)

// etcdMember is a member as etcd's JSON gateway gives it (IDs are uint64s,
// which the gateway writes as strings).
type etcdMember struct {
	ID       string   `json:"ID"`
	Name     string   `json:"name,omitempty"`
	PeerURLs []string `json:"peerURLs"`
}

// advertisePeerURL makes etcd's member record the peer URL it now serves.
//
// A restarted member reads its peer URL from its data and ignores the
// --initial-* flags, so a state folder made when the peer port spoke plain
// HTTP (or on another port) would list that URL forever. A single member
// never dials its own peer URL, so etcd works either way; a member update
// through the client API, a raft configuration change that touches no key,
// puts the record right without --force-new-cluster.
func advertisePeerURL(ctx context.Context, p pkiFiles, clientURL, peerURL string, log *slog.Logger) error {
	client, err := etcdClient(p)
	if err != nil {
		return err
	}
	var list struct {
		Members []etcdMember `json:"members"`
	}
	if err := etcdCall(ctx, client, clientURL+"/v3/cluster/member/list", struct{}{}, &list); err != nil {
		return err
	}
	for _, m := range list.Members {
		if m.Name != etcdName {
			continue
		}
		if slices.Equal(m.PeerURLs, []string{peerURL}) {
			return nil
		}
		update := etcdMember{ID: m.ID, PeerURLs: []string{peerURL}}
		if err := etcdCall(ctx, client, clientURL+"/v3/cluster/member/update", update, nil); err != nil {
			return err
		}
		log.Info("etcd member's peer URL updated", "from", m.PeerURLs, "to", peerURL)
		return nil
	}
	return fmt.Errorf("etcd has no member named %s: %+v", etcdName, list.Members)
}

// etcdName is the name of the cluster's only etcd member.
const etcdName = "spoteci"

// etcdClient presents the apiserver's etcd client certificate and trusts
// etcd's CA only.
func etcdClient(p pkiFiles) (*http.Client, error) {
	ca, err := os.ReadFile(p.cert(etcdCA))
	if err != nil {
		return nil, fmt.Errorf("read etcd CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in " + p.cert(etcdCA))
	}
	cert, err := tls.LoadX509KeyPair(p.cert("apiserver-etcd-client"), p.key("apiserver-etcd-client"))
	if err != nil {
		return nil, fmt.Errorf("load etcd client certificate: %w", err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// etcdCall POSTs in as JSON to one of etcd's gateway endpoints and decodes
// the answer into out (unless nil).
func etcdCall(ctx context.Context, client *http.Client, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", url, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	return nil
}
