package jwtsign

import (
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
	"time"
)

func kids(ps []*KeyPair) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.KID)
	}
	return out
}

// threeRotations returns a set whose current key c was preceded by b and a
// (both still published for an hour) and that publishes a next key n.
func threeRotations(t *testing.T) (s *KeySet, a, b, c, n string) {
	t.Helper()
	s = &KeySet{}
	for i := 0; i < 3; i++ {
		if err := s.Rotate(rand.Reader, t0, time.Hour, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PrepareNext(rand.Reader, t0); err != nil {
		t.Fatal(err)
	}
	return s, s.Previous[1].KID, s.Previous[0].KID, s.Current.KID, s.Next.KID
}

func TestWithdrawNamedKeys(t *testing.T) {
	s, a, b, c, n := threeRotations(t)
	if got := kids(s.Published(t0)); !reflect.DeepEqual(got, []string{c, n, b, a}) {
		t.Fatalf("published = %v", got)
	}
	// Refusals change nothing, even when other kids named are fine.
	for _, tc := range []struct {
		kids []string
		want error
	}{
		{[]string{a, c}, ErrCurrentKey},
		{[]string{a, "no-such-kid"}, ErrNotPublished},
	} {
		if err := s.Withdraw(t0, tc.kids); !errors.Is(err, tc.want) {
			t.Fatalf("Withdraw(%v) = %v, want %v", tc.kids, err, tc.want)
		}
		if got := kids(s.Published(t0)); !reflect.DeepEqual(got, []string{c, n, b, a}) {
			t.Fatalf("a refused withdrawal changed the set: %v", got)
		}
	}
	// The older rotated-out key, not only the latest, can be withdrawn.
	if err := s.Withdraw(t0, []string{a}); err != nil {
		t.Fatal(err)
	}
	if got := kids(s.Published(t0)); !reflect.DeepEqual(got, []string{c, n, b}) {
		t.Fatalf("published after withdrawing %s = %v", a, got)
	}
	if err := s.Withdraw(t0, []string{a}); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("withdrawing twice = %v", err)
	}
	if err := s.Withdraw(t0, []string{n, b}); err != nil {
		t.Fatal(err)
	}
	if s.Next != nil || len(s.Previous) != 0 || s.Current.KID != c {
		t.Fatalf("set after withdrawing next and previous = %+v", s)
	}
	// A key past its keep period is no longer published: nothing to withdraw.
	s2, a2, _, _, _ := threeRotations(t)
	if err := s2.Withdraw(t0.Add(time.Hour), []string{a2}); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("withdrawing an expired key = %v", err)
	}
}

func TestWithdrawAllButCurrent(t *testing.T) {
	s, a, b, c, n := threeRotations(t)
	got := s.WithdrawAllButCurrent(t0)
	if !reflect.DeepEqual(got, []string{n, b, a}) {
		t.Fatalf("withdrawn = %v", got)
	}
	if got := kids(s.Published(t0)); !reflect.DeepEqual(got, []string{c}) {
		t.Fatalf("published = %v", got)
	}
}
