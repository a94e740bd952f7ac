// Package openapi is Alibaba Cloud's RPC-style OpenAPI on the wire, as the
// official SDKs speak it: every parameter in the query string (and, for
// some callers, a form body), lists flattened as Name.1.Field, and an
// HMAC-SHA1 signature (signature version 1.0) over the sorted parameters.
// It knows nothing of ECI: it verifies and decodes requests and writes
// errors in the shape the SDKs read.
package openapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// TimestampLayout is the format of the Timestamp parameter (UTC).
const TimestampLayout = "2006-01-02T15:04:05Z"

// MaxClockSkew is how far a request's Timestamp may be from the server's
// wall clock.
const MaxClockSkew = 15 * time.Minute

// unreserved reports whether RFC 3986 leaves c as it is.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

const upperHex = "0123456789ABCDEF"

// writeTwiceEncoded writes s percent-encoded (RFC 3986) and then encoded
// again, as the string to sign holds the encoded query encoded once more:
// an unreserved byte stays, any other becomes %25XX.
func writeTwiceEncoded(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%25")
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// StringToSign is what signature version 1.0 signs: the method, the
// encoded path "/" and the encoded, key-sorted query of every parameter
// except Signature (RFC 3986 encoding, applied to the keys and values and
// then to the query as a whole).
func StringToSign(method string, params url.Values) string {
	keys := make([]string, 0, len(params))
	size := len(method) + 4
	for k, v := range params {
		if k != "Signature" {
			keys = append(keys, k)
			size += 3*len(k) + 3*len(first(v)) + 6
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteString(method)
	b.WriteString("&%2F&")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("%26") // '&', encoded
		}
		writeTwiceEncoded(&b, k)
		b.WriteString("%3D") // '='
		writeTwiceEncoded(&b, first(params[k]))
	}
	return b.String()
}

// Sign is the signature of stringToSign under an AccessKey secret.
func Sign(stringToSign, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verifier checks the signature, AccessKey, timestamp and nonce of
// requests. Safe for concurrent use.
type Verifier struct {
	// Secrets maps AccessKey IDs to their secrets.
	Secrets map[string]string
	// Now reads the wall clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> its request's timestamp
	swept  time.Time
}

// Verify checks a request's common parameters and its signature; the error
// is an *Error with ECI's code for what is wrong.
func (v *Verifier) Verify(method string, params url.Values) error {
	for _, name := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		if params.Get(name) == "" {
			return MissingParameter(name)
		}
	}
	if m := params.Get("SignatureMethod"); m != "HMAC-SHA1" {
		return &Error{Status: 400, Code: "InvalidSignatureMethod", Message: "Specified signature method is not valid: " + m + " (want HMAC-SHA1)."}
	}
	if sv := params.Get("SignatureVersion"); sv != "1.0" {
		return &Error{Status: 400, Code: "UnsupportedSignatureVersion", Message: "Specified signature version is not supported: " + sv + " (want 1.0)."}
	}
	ts, err := time.Parse(TimestampLayout, params.Get("Timestamp"))
	if err != nil {
		return &Error{Status: 400, Code: "InvalidTimeStamp.Format", Message: "Specified time stamp or date value is not well formatted: " + params.Get("Timestamp") + " (want " + TimestampLayout + ")."}
	}
	now := v.now()
	if d := now.Sub(ts); d > MaxClockSkew || d < -MaxClockSkew {
		return &Error{Status: 400, Code: "InvalidTimeStamp.Expired", Message: "Specified time stamp or date value is expired: " + params.Get("Timestamp") + " is more than 15 minutes from the server's " + now.UTC().Format(TimestampLayout) + "."}
	}
	secret, ok := v.Secrets[params.Get("AccessKeyId")]
	if !ok {
		return &Error{Status: 404, Code: "InvalidAccessKeyId.NotFound", Message: "Specified access key is not found: " + params.Get("AccessKeyId") + "."}
	}
	stringToSign := StringToSign(method, params)
	want := Sign(stringToSign, secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(params.Get("Signature"))) != 1 {
		return &Error{Status: 400, Code: "SignatureDoesNotMatch", Message: "Specified signature does not match our calculation. The string to sign was: " + stringToSign}
	}
	// Only a request signed by the key's holder takes up its nonce.
	if !v.takeNonce(params.Get("SignatureNonce"), ts, now) {
		return &Error{Status: 400, Code: "SignatureNonceUsed", Message: "Specified signature nonce was used already: " + params.Get("SignatureNonce") + "."}
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// takeNonce records a nonce; false if it was seen within the window in which
// its request's timestamp is valid. Nonces older than that window are
// forgotten, since their requests would be refused for their timestamps.
func (v *Verifier) takeNonce(nonce string, ts, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = map[string]time.Time{}
	}
	if now.Sub(v.swept) > time.Minute {
		for n, t := range v.nonces {
			if now.Sub(t) > MaxClockSkew {
				delete(v.nonces, n)
			}
		}
		v.swept = now
	}
	if _, used := v.nonces[nonce]; used {
		return false
	}
	v.nonces[nonce] = ts
	return true
}
