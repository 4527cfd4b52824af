// Command webhook-receiver is a small webhook receiver for trying the
// mount's notifications: it verifies every delivery with the Standard
// Webhooks reference library and the endpoint's secret (401 otherwise),
// de-duplicates on webhook-id, and prints one line per new event:
//
//	webhook-receiver -listen 127.0.0.1:8300 -secret-file secops.secret
//
// A delivery of a webhook-id already received (a retry whose answer was
// lost, a replay) is acknowledged and reported as a duplicate.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/webhookrx"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8300", "address to listen on")
	secretFile := flag.String("secret-file", "", "file holding the endpoint's secret (whsec_...)")
	flag.Parse()
	raw, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatalf("reading -secret-file: %v", err)
	}
	rx, err := webhookrx.Start(*listen, strings.TrimSpace(string(raw)))
	if err != nil {
		log.Fatal(err)
	}
	rx.OnEvent(func(e *webhookrx.Event, first bool) {
		if !first {
			fmt.Printf("duplicate %s (delivery %d of this webhook-id, dropped)\n", e.ID, e.Attempts)
			return
		}
		fmt.Printf("verified %s type=%s seq=%d%s\n", e.ID, e.Type, e.Seq, fields(e))
	})
	fmt.Printf("listening on %s (deliveries verified with the endpoint's secret)\n", rx.URL)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	rx.Close()
}

func fields(e *webhookrx.Event) string {
	var b strings.Builder
	for _, kv := range [][2]string{{"client", e.Client}, {"key", e.Key}, {"key_id", e.KeyID}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, e.Details[k])
	}
	return b.String()
}
