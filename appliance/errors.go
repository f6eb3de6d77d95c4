package appliance

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps them to JSON-RPC error names in one place
// (appliance/httpapi/errors.go).
const (
	EINVALID     = "invalid"     // the request cannot be understood: bad JSON, missing or mistyped params
	ENOTFOUND    = "not_found"   // no such route or record
	EUNAVAILABLE = "unavailable" // the store cannot take the write (disk full, closed); nothing was applied
	EINTERNAL    = "internal"    // a bug
	EFORBIDDEN   = "forbidden"   // refused by an access rule (security.allowed_*): HTTP 403
	ELIMIT       = "limit"       // refused because the box tracks as much state as it may (security.max_*); nothing was stored
)

// ErrNotFound is returned by Store.Order when no record exists.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by components used after Close.
var ErrClosed = errors.New("closed")

// Error is a user-facing error: Message says what was wrong and where, in
// words fit for the integrator reading the POS's error popup or the log.
type Error struct {
	Code    string
	Message string
	Value   string // optional: the refused value (a database name, a key) for the log's value= field
	Err     error  // optional cause, for errors.Is/As and logs
}

// WithValue sets e.Value and returns e.
func (e *Error) WithValue(v string) *Error {
	e.Value = v
	return e
}

// ErrorValue returns the Value of the first *Error in err's chain, or "".
func ErrorValue(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Value
	}
	return ""
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// err.Error() for other errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}
