package ecisdk

import (
	"context"
	"errors"
	"testing"

	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"
)

// A call returns when its context ends, even while every client of the
// pool is busy; after Close, calls fail at once.
func TestCallsHonourContextAndClose(t *testing.T) {
	p, err := New(Config{Endpoint: "127.0.0.1:1", Region: "cn-hangzhou", AccessKeyID: "id", AccessKeySecret: "secret", Clients: 1})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	busy := make(chan struct{})
	go p.Do(context.Background(), func(*sdkeci.Client) error { close(busy); <-release; return nil })
	<-busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Do(ctx, func(*sdkeci.Client) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("with the pool busy and the context ended: %v", err)
	}
	close(release)
	p.Close()
	if err := p.Do(context.Background(), func(*sdkeci.Client) error { return nil }); err == nil {
		t.Error("a call after Close succeeded")
	}
}
