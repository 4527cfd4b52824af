package verifycache

import "testing"

func TestAbsenceNoteHoldsUntilTheKeyIsDropped(t *testing.T) {
	c := New()
	f := c.KeyFence("svc", "k")
	c.NoteKeyAbsent("req-1", "svc", "k", f)
	if !c.TakeKeyAbsent("req-1", "svc", "k") {
		t.Fatal("an untouched note must hold")
	}
	if c.TakeKeyAbsent("req-1", "svc", "k") {
		t.Fatal("a note is taken once")
	}

	f = c.KeyFence("svc", "k")
	c.NoteKeyAbsent("req-2", "svc", "k", f)
	c.DropKey("svc", "k") // a write of the key after the existence check
	if c.TakeKeyAbsent("req-2", "svc", "k") {
		t.Fatal("a note must not survive a drop of its key")
	}

	f = c.KeyFence("svc", "k")
	c.NoteKeyAbsent("req-3", "svc", "k", f)
	c.Purge()
	if c.TakeKeyAbsent("req-3", "svc", "k") {
		t.Fatal("a note must not survive a purge")
	}
}

func TestAbsenceNoteIsForItsKeyAndRequestOnly(t *testing.T) {
	c := New()
	c.NoteKeyAbsent("req-1", "svc", "k", c.KeyFence("svc", "k"))
	if c.TakeKeyAbsent("req-2", "svc", "k") {
		t.Fatal("another request's note was used")
	}
	if c.TakeKeyAbsent("req-1", "svc", "other") {
		t.Fatal("a note of another key was used")
	}
	c.NoteKeyAbsent("", "svc", "k", c.KeyFence("svc", "k"))
	if c.TakeKeyAbsent("", "svc", "k") {
		t.Fatal("a request without an id has no note")
	}
	c.NoteKeyAbsent("req-3", "svc", "k", c.KeyFence("svc", "k"))
	c.ForgetKeyAbsent("req-3")
	if c.TakeKeyAbsent("req-3", "svc", "k") {
		t.Fatal("a forgotten note was used")
	}
}

func TestAbsenceNotesAreBounded(t *testing.T) {
	c := New()
	for i := 0; i < 3*maxAbsenceNotes; i++ {
		c.NoteKeyAbsent(string(rune('a'+i%26))+string(rune(i)), "svc", "k", c.KeyFence("svc", "k"))
	}
	if n := c.absent.Len(); n > maxAbsenceNotes {
		t.Fatalf("%d notes kept, bound %d", n, maxAbsenceNotes)
	}
}
