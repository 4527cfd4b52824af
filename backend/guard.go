package backend

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// Every request of a mount passes here, whatever its path, on its way in
// and out of the framework's routing (the periodic tick too: Vault sends
// it as a rollback request). Two guarantees are kept in this one place
// rather than in each handler:
//
//   - A panic fails only its request. The plugin process is shared by
//     every mount of the plugin (multiplexing), and it holds what is only
//     in memory: rate-limit windows, guessing counters, buffered usage.
//     One bad request must not take that down: the panic becomes a 500
//     and a log line (with the stack, which holds no secret: Go prints
//     string arguments as pointers), and the process carries on.
//   - Nothing the plugin says back repeats a key pasted into the wrong
//     field: error messages and warnings are passed through
//     keyformat.Redact, which covers every handler's messages and the
//     framework's own (field validation quotes the values it could not
//     convert, unknown parameters are named in a warning).

// errInternal answers a request whose handler panicked.
var errInternal = errors.New("internal error: the plugin failed on this request; the Vault server log has the details")

// HandleRequest routes req through the framework; see above.
func (b *apikeysBackend) HandleRequest(ctx context.Context, req *logical.Request) (resp *logical.Response, err error) {
	defer b.recoverRequest(req, &resp, &err)
	resp, err = b.Backend.HandleRequest(ctx, req)
	return redactResponse(resp), redactError(err)
}

// HandleExistenceCheck is HandleRequest's counterpart for the existence
// check Vault runs before a write.
func (b *apikeysBackend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound, exists bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.logPanic(req, p)
			checkFound, exists, err = false, false, errInternal
		}
	}()
	checkFound, exists, err = b.Backend.HandleExistenceCheck(ctx, req)
	return checkFound, exists, redactError(err)
}

// recoverRequest turns a panic of the request into errInternal.
func (b *apikeysBackend) recoverRequest(req *logical.Request, resp **logical.Response, err *error) {
	if p := recover(); p != nil {
		b.logPanic(req, p)
		*resp, *err = nil, errInternal
	}
}

func (b *apikeysBackend) logPanic(req *logical.Request, p interface{}) {
	b.logger.Error("internal error: a request panicked; it failed with a 500 and the plugin keeps running",
		"operation", string(req.Operation), "path", keyformat.Redact(req.Path), "panic", panicText(p), "stack", string(debug.Stack()))
}

// panicText describes a panic value for the log. A runtime error says what
// went wrong in fixed words; any other value is redacted, as it may quote
// request input.
func panicText(p interface{}) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return keyformat.Redact(fmt.Sprintf("%T: %v", p, p))
}

// redactResponse redacts the texts of resp that can repeat request input:
// its warnings and, on an error response, the error. Data of a successful
// answer is left alone (it holds stored values, validated on the way in).
func redactResponse(resp *logical.Response) *logical.Response {
	if resp == nil {
		return nil
	}
	for i, w := range resp.Warnings {
		resp.Warnings[i] = keyformat.Redact(w)
	}
	if msg, ok := resp.Data["error"].(string); ok {
		resp.Data["error"] = keyformat.Redact(msg)
	}
	return resp
}

// redactError redacts an error's text, keeping the kinds Vault maps to a
// status (the plugin protocol passes the kind and the text; sentinel
// errors such as logical.ErrPermissionDenied never carry input and are
// returned as they are).
func redactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := keyformat.Redact(msg)
	if red == msg {
		return err
	}
	// The same kinds, tested the same way (by type, not unwrapping), as
	// the plugin protocol's pb.ErrToProtoErr.
	switch e := err.(type) {
	case errutil.UserError:
		return errutil.UserError{Err: red}
	case errutil.InternalError:
		return errutil.InternalError{Err: red}
	case logical.HTTPCodedError:
		return logical.CodedError(e.Code(), red)
	case *logical.StatusBadRequest:
		return &logical.StatusBadRequest{Err: red}
	}
	return errors.New(red)
}
