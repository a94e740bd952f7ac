package openapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxBody bounds a form body; a request's parameters are a few KB.
const MaxBody = 1 << 20

// Params collects a request's parameters from its query string and, when
// it has one, its form body (application/x-www-form-urlencoded), as the
// signature covers both. A parameter given twice is refused.
func Params(r *http.Request) (url.Values, error) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidParameter", Message: "The query string is malformed: " + err.Error()}
	}
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidParameter", Message: "The body could not be read: " + err.Error()}
		}
		if len(body) > MaxBody {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "InvalidParameter", Message: "The body is larger than 1 MiB."}
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidParameter", Message: "The form body is malformed: " + err.Error()}
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	for k, v := range params {
		if len(v) > 1 {
			return nil, InvalidParameter(k, "given more than once")
		}
	}
	return params, nil
}
