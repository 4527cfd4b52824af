package backend

import (
	"github.com/hashicorp/vault/sdk/framework"
)

// namePattern is the path segment regex for names; the handler validates
// with record.NameRe so a bad name gets a clear 400 rather than
// "unsupported path".
func namePattern(field string) string { return framework.GenericNameRegex(field) }
