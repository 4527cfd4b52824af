// Command vault is the open-source (MPL-2.0) Vault v1.13.2 server and CLI,
// built from its Go module so the plugin is always tested against a real
// Vault that this repository builds itself. See bootstrap/README.md.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
