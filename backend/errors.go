package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// userError is a problem with the request that the caller can fix. It is
// the one way the engine refuses a request: handlers and the code under
// them return it like any error, and the wrapper every handler runs in
// (renderedPaths, render.go; the leased-key secret's renew and revoke)
// answers it with a 400 carrying its message (answerUserError). Any other error is a 500.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func userErrorf(format string, args ...interface{}) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// answerUserError turns a user error into the 400 Vault shows the caller;
// any other outcome passes as it is.
func answerUserError(resp *logical.Response, err error) (*logical.Response, error) {
	if err == nil {
		return resp, nil // the common case, without errors.As's allocation
	}
	var ue *userError
	if errors.As(err, &ue) {
		return logical.ErrorResponse(ue.msg), nil
	}
	return resp, err
}

// userErrorsAnswered wraps a handler with answerUserError.
func userErrorsAnswered(cb framework.OperationFunc) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		return answerUserError(cb(ctx, req, d))
	}
}
