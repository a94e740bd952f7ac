package openapi

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error is a failed call as the OpenAPI answers it: an HTTP status and a
// body of RequestId, HostId, Code and Message (the SDKs read Code and
// Message into their ServerError).
type Error struct {
	Status  int
	Code    string
	Message string
	// Spoteci is what spoteci's clients read beside Code and Message (the
	// field a refusal names, its value and why), written as the body's
	// "Spoteci", which ECI's SDKs ignore; nil writes nothing.
	Spoteci any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// MissingParameter is the error for a required parameter left out.
func MissingParameter(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "MissingParameter", Message: "The input parameter \"" + name + "\" that is mandatory for processing this request is not supplied."}
}

// InvalidParameter is the error for a parameter whose value is refused.
func InvalidParameter(name, why string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidParameter", Message: "The specified parameter \"" + name + "\" is not valid: " + why}
}

// errorBody is the JSON of an error.
type errorBody struct {
	RequestId string
	HostId    string
	Code      string
	Message   string
	Recommend string `json:",omitempty"`
	Spoteci   any    `json:",omitempty"`
}

// WriteError writes err; an error that is not an *Error is a 500
// InternalError.
func WriteError(w http.ResponseWriter, requestID, host string, err error) int {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "The request processing has failed due to some unknown error: " + err.Error()}
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(errorBody{RequestId: requestID, HostId: host, Code: e.Code, Message: e.Message, Spoteci: e.Spoteci})
	return e.Status
}
