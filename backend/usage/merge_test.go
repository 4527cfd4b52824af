package usage

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestPushSourceBounded(t *testing.T) {
	var list []string
	for i := 0; i < 20; i++ {
		list = pushSource(list, string(rune('a'+i)))
	}
	list = pushSource(list, "p")
	if len(list) != maxRecentSources || list[0] != "p" || list[1] != "t" {
		t.Fatalf("list = %v", list)
	}
	if CanonicalSource("not-an-ip") != "" || CanonicalSource("::ffff:10.0.0.1") != "10.0.0.1" || CanonicalSource("10.0.0.2:443") != "10.0.0.2" {
		t.Fatal("CanonicalSource")
	}
}

// A flush and a read apply the same rules: times only move forward, counts
// add up, newer sources go first; a version the record no longer has is
// skipped.
func TestSnapshotMergeIntoAndReadsAgree(t *testing.T) {
	stored := func() *record.Key {
		return &record.Key{KeyID: "kid_a", Client: "svc", Name: "a",
			LastUsedAt: testStart.Add(time.Hour),
			Versions: []*record.KeyVersion{
				{Version: 1, LastVerifiedAt: testStart},
				{Version: 2, LastVerifiedAt: testStart.Add(time.Hour)},
			},
			Usage: &record.KeyUsage{Counts: map[string]uint64{record.OutcomeActive: 5}, RecentSources: []string{"192.0.2.9", "192.0.2.1"}},
		}
	}
	u := NewTracker()
	k := stored()
	u.Record(k, 1, record.OutcomeActive, "192.0.2.1", testStart.Add(time.Minute))
	u.Record(k, 2, record.OutcomeActive, "192.0.2.2", testStart.Add(2*time.Minute)) // older than stored
	u.Record(k, 3, record.OutcomeActive, "", testStart.Add(3*time.Minute))          // no such version
	u.Record(k, 1, record.CodeForbiddenScope, "", testStart.Add(4*time.Minute))

	read := u.Summary(k)
	sns := u.snapshots(10)
	if len(sns) != 1 || sns[0].KeyID != "kid_a" || sns[0].Client != "svc" || sns[0].Name != "a" {
		t.Fatalf("snapshots = %+v", sns)
	}
	sns[0].MergeInto(k)
	if !k.LastUsedAt.Equal(testStart.Add(time.Hour)) {
		t.Errorf("last use moved back: %v", k.LastUsedAt)
	}
	if got := k.Version(1).LastVerifiedAt; !got.Equal(testStart.Add(time.Minute)) {
		t.Errorf("version 1 last verified %v", got)
	}
	if got := k.Version(2).LastVerifiedAt; !got.Equal(testStart.Add(time.Hour)) {
		t.Errorf("version 2 last verified moved back: %v", got)
	}
	want := map[string]uint64{record.OutcomeActive: 8, record.CodeForbiddenScope: 1}
	for c, n := range want {
		if k.Usage.Counts[c] != n || read["verify_counts"].(map[string]uint64)[c] != n {
			t.Errorf("%s: stored %d, read %d, want %d", c, k.Usage.Counts[c], read["verify_counts"].(map[string]uint64)[c], n)
		}
	}
	wantSrc := []string{"192.0.2.2", "192.0.2.1", "192.0.2.9"}
	for i, s := range wantSrc {
		if k.Usage.RecentSources[i] != s || read["recent_sources"].([]string)[i] != s {
			t.Fatalf("sources: stored %v, read %v, want %v", k.Usage.RecentSources, read["recent_sources"], wantSrc)
		}
	}
	// A read merges the buffer into the stored record the same way.
	if got := u.LastUsed(stored()); !got.Equal(testStart.Add(time.Hour)) {
		t.Errorf("LastUsed = %v", got)
	}
	if got := u.VersionLastVerified(stored(), 1); !got.Equal(testStart.Add(time.Minute)) {
		t.Errorf("VersionLastVerified(1) = %v", got)
	}
	u.flushed(sns[0])
	if e, s, q := u.Buffered(); e+s+q != 0 {
		t.Fatalf("after the flush: %d entries, %d spilled, %d queued", e, s, q)
	}
	if got := u.Summary(&record.Key{KeyID: "kid_b"})["recent_sources"].([]string); got == nil || len(got) != 0 {
		t.Fatalf("a key never used reads sources %#v, want an empty list", got)
	}
}
