package eci

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Client calls the service's admin API: what ECI has no action for (market
// overrides, bills, followed logs). ECI's own actions go through the
// official SDK (internal/ecisdk).
type Client struct {
	Endpoint string // http://127.0.0.1:PORT
	Token    string
	HTTP     *http.Client // nil: http.DefaultClient
}

// ServerInfo is what a server writes to eci.json in its state folder so that
// the CLI (and the node) can find it.
type ServerInfo struct {
	Endpoint string
	// Token is the bearer token of the admin API (/api/v1/).
	Token string
	// AccessKeyId and AccessKeySecret sign OpenAPI calls (at /), as the
	// official SDK does.
	AccessKeyId     string `json:",omitempty"`
	AccessKeySecret string `json:",omitempty"`
	// Region is the region the service sells in.
	Region string `json:",omitempty"`
	// TimeScale is how many times faster than wall time the market runs
	// (1 when absent): a local node scales its deadline policy's tick by it.
	TimeScale float64 `json:",omitempty"`
	// Console is the URL of the web console (sign in with Token).
	Console string `json:",omitempty"`
}

// InfoFile is the name of the server's info file in its state folder.
const InfoFile = "eci.json"

// ReadServerInfo reads the info file of the server with state folder dir.
func ReadServerInfo(dir string) (ServerInfo, error) {
	var info ServerInfo
	data, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return info, fmt.Errorf("reading the server's endpoint and token (is `spoteci server --state-dir %s` running?): %w", dir, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("decoding %s: %w", filepath.Join(dir, InfoFile), err)
	}
	return info, nil
}

// WriteServerInfo writes the info file, readable by its owner only.
func WriteServerInfo(dir string, info ServerInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, InfoFile), append(data, '\n'), 0o600)
}

// Call posts req to action and decodes the answer into resp. A failed action
// returns an *Error.
func (c *Client) Call(ctx context.Context, action string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding %s request: %w", action, err)
	}
	r, err := c.post(ctx, action, body)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	return decode(action, r, resp)
}

func (c *Client) post(ctx context.Context, action string, body []byte) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Endpoint, "/")+APIPrefix+action, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+c.Token)
	r, err := cmp.Or(c.HTTP, http.DefaultClient).Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	return r, nil
}

func decode(action string, r *http.Response, resp any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("%s: reading response: %w", action, err)
	}
	if r.StatusCode != http.StatusOK {
		e := &Error{HTTPStatus: r.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = http.StatusText(r.StatusCode), strings.TrimSpace(string(data))
		}
		return e
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("%s: decoding response: %w", action, err)
	}
	return nil
}

// IsNotFound reports whether err says the group does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.HTTPStatus == http.StatusNotFound
}

// Metrics reads the service's Prometheus metrics, in the text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Endpoint, "/")+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+c.Token)
	r, err := cmp.Or(c.HTTP, http.DefaultClient).Do(hr)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return "", fmt.Errorf("metrics: reading response: %w", err)
	}
	if r.StatusCode != http.StatusOK {
		return "", &Error{HTTPStatus: r.StatusCode, Code: http.StatusText(r.StatusCode), Message: strings.TrimSpace(string(data))}
	}
	return string(data), nil
}

// DescribeBill reads the bill.
func (c *Client) DescribeBill(ctx context.Context, req DescribeBillRequest) (resp DescribeBillResponse, err error) {
	return resp, c.Call(ctx, ActionDescribeBill, req, &resp)
}

// ModifySpotMarket overrides price or stock (operator action).
func (c *Client) ModifySpotMarket(ctx context.Context, req ModifySpotMarketRequest) (resp ModifySpotMarketResponse, err error) {
	return resp, c.Call(ctx, ActionModifySpotMarket, req, &resp)
}

// StreamContainerLog opens a container's log as a stream; with req.Follow it
// stays open while the container runs. The caller closes it.
func (c *Client) StreamContainerLog(ctx context.Context, req DescribeContainerLogRequest) (io.ReadCloser, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding %s request: %w", ActionStreamContainerLog, err)
	}
	r, err := c.post(ctx, ActionStreamContainerLog, body)
	if err != nil {
		return nil, err
	}
	if r.StatusCode != http.StatusOK {
		defer r.Body.Close()
		return nil, decode(ActionStreamContainerLog, r, nil)
	}
	return r.Body, nil
}

// CopyFlushing copies r to w, flushing w after each read so that a followed
// log reaches its reader line by line. It stops at the first error.
func CopyFlushing(w io.Writer, r io.Reader) {
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
