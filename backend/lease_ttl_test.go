package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestLeaseLimitsFor(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name             string
		ttl, max         time.Duration
		mountDef, mntMax time.Duration
		want             leaseLimits
	}{
		{"role values", h, 4 * h, 24 * h, 48 * h, leaseLimits{h, 4 * h}},
		{"inherit mount", 0, 0, 24 * h, 48 * h, leaseLimits{24 * h, 48 * h}},
		{"role max above mount max", h, 100 * h, 24 * h, 48 * h, leaseLimits{h, 48 * h}},
		{"ttl above role max", 5 * h, 2 * h, 24 * h, 48 * h, leaseLimits{2 * h, 2 * h}},
		{"mount default above role max", 0, 2 * h, 24 * h, 48 * h, leaseLimits{2 * h, 2 * h}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := leaseLimitsFor(&record.Role{TTL: tc.ttl, MaxTTL: tc.max}, tc.mountDef, tc.mntMax)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRenewTTL(t *testing.T) {
	lim := leaseLimits{TTL: time.Minute, MaxTTL: 10 * time.Minute}
	issued := testStart
	cases := []struct {
		name      string
		at        time.Duration
		increment time.Duration
		want      time.Duration
		capped    bool
		err       string
	}{
		{"role ttl", 2 * time.Minute, 0, time.Minute, false, ""},
		{"increment", 2 * time.Minute, 3 * time.Minute, 3 * time.Minute, false, ""},
		{"capped by max", 8 * time.Minute, 5 * time.Minute, 2 * time.Minute, true, ""},
		{"at max", 10 * time.Minute, 0, 0, false, "max_ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, capped, err := renewTTL(lim, issued, issued.Add(tc.at), tc.increment)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || capped != tc.capped {
				t.Fatalf("got %s capped=%v err=%v, want %s capped=%v", got, capped, err, tc.want, tc.capped)
			}
		})
	}
}
