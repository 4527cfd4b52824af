package detect

import "github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"

// burst follows one alert of the current window (a key's alert of one
// type, or the mount's failed_verify_burst). Occurrences are counted into
// the alert while it waits in the buffer. A drain hands it over for
// storage, and from then on the detector never touches it again: the next
// occurrence in the same window raises a follow-up alert that names it
// (details "continues"), counting from one. So every occurrence is in
// exactly one stored alert, stored alerts are never rewritten behind the
// lifecycle log's back (its alert.raised entry carries the count), and an
// alert acknowledged meanwhile does not hide what came after.
type burst struct {
	alert *record.Alert // nil when the buffer was full (the detection was dropped)
	// id is alert's id, kept here: once handed over, alert is not read.
	id string
	// epoch is the detector's drain epoch when alert was buffered; a
	// different epoch means it was handed over.
	epoch uint64
}

// open is the alert still in the buffer, if any, to count into.
func (bu *burst) open(d *Detector) *record.Alert {
	if bu == nil || bu.epoch != d.epoch {
		return nil
	}
	return bu.alert
}

// handedOver reports whether an alert of this burst was handed over for
// storage: the next one is a follow-up.
func (bu *burst) handedOver(d *Detector) bool {
	return bu != nil && bu.alert != nil && bu.epoch != d.epoch
}
