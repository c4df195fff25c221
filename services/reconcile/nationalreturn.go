package reconcile

import (
	"google.golang.org/protobuf/proto"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
	"github.com/dmic-nhs/dmic/services/deidentify/didi"
)

// nationalReturn re-keys a record for the national return: the pseudonym it
// carries becomes its national-return domain pseudonym (made by deidentify
// under that domain's key), and no other domain's pseudonym goes with it, so
// the national return cannot be linked to the analytical store. A record
// without a national-return pseudonym leaves with none (and says why), never
// with the analytics one. rec is changed in place.
func nationalReturn(rec *dmicv1.DeidentifiedRecord) ([]byte, error) {
	a := rec.GetActivity()
	if a == nil {
		return proto.Marshal(rec)
	}
	var nr *dmicv1.DomainPseudonym
	for _, p := range a.GetDomainPseudonyms() {
		if p.GetDomain() == didi.DomainNationalReturn {
			nr = p
		}
	}
	hadPseudonym := a.GetPseudoNhsNumber() != ""
	a.PseudonymDomain = didi.DomainNationalReturn
	a.PseudoNhsNumber, a.PseudonymKeyVersion = nr.GetPseudonym(), nr.GetKeyVersion()
	if nr.GetPseudonym() == "" && hadPseudonym {
		// Pseudonymised in analytics only (before the domain had a key).
		a.PseudonymAbsentReason = didi.AbsentNoDomainPseudonym
	}
	a.DomainPseudonyms = nil
	return proto.Marshal(rec)
}
