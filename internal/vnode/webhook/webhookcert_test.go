package webhook

import (
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

func configTrusting(bundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{
		{ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}},
		{ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}}}}
}

// A certificate is fresh for its names until two thirds of its life; the
// rotated one's bundle keeps the previous CA, so replicas still serving the
// old certificate stay trusted until they switch, and they switch only to
// a certificate the configuration trusts.
func TestWebhookCertRotation(t *testing.T) {
	names := []string{"spoteci-webhook.spoteci-system.svc", "spoteci-webhook.spoteci-system.svc.cluster.local"}
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	data, err := issueWebhookCert(names, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	first, err := parseWebhookSecret(data)
	if err != nil {
		t.Fatal(err)
	}
	if !first.fresh(names, now.Add(19*24*time.Hour)) {
		t.Error("stale after 19 days of 30")
	}
	if first.fresh(names, now.Add(21*24*time.Hour)) {
		t.Error("fresh after 21 days of 30: rotation is due at 20")
	}
	if first.fresh([]string{"127.0.0.1"}, now) {
		t.Error("fresh for a name it does not carry")
	}
	data, err = issueWebhookCert(names, first, now.Add(20*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	second, err := parseWebhookSecret(data)
	if err != nil {
		t.Fatal(err)
	}
	if second.ca.Equal(first.ca) {
		t.Fatal("rotation kept the CA")
	}
	later := now.Add(20*24*time.Hour + time.Hour)
	newBundle := configTrusting(second.bundle)
	if !trusts(newBundle, first.cert.Leaf, later) || !trusts(newBundle, second.cert.Leaf, later) {
		t.Error("the rotated bundle does not trust both the old and the new certificate")
	}
	if trusts(configTrusting(first.bundle), second.cert.Leaf, later) {
		t.Error("the old bundle trusts the new certificate")
	}
	if trusts(&admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{}}}, first.cert.Leaf, now) {
		t.Error("an empty bundle trusts a certificate")
	}
}

// An IP address is put in the certificate as one, as the apiserver checks
// a URL's host.
func TestWebhookCertIP(t *testing.T) {
	data, err := issueWebhookCert([]string{"127.0.0.1", "localhost"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseWebhookSecret(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.cert.Leaf.IPAddresses) != 1 || !p.fresh([]string{"127.0.0.1", "localhost"}, time.Now()) {
		t.Errorf("IPs %v DNS %v", p.cert.Leaf.IPAddresses, p.cert.Leaf.DNSNames)
	}
}
