package backend

import (
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// userError is a problem with the request that the caller can fix; handlers
// turn it into a 400 with its message. Any other error is a 500.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func userErrorf(format string, args ...interface{}) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// respond maps an operation's outcome onto a Vault response.
func respond(resp *logical.Response, err error) (*logical.Response, error) {
	var ue *userError
	if errors.As(err, &ue) {
		return logical.ErrorResponse(ue.msg), nil
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
