package didi

import dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"

// domainPseudonymiser pseudonymises for one domain other than analytics.
type domainPseudonymiser struct {
	domain string
	p      *Pseudonymiser
}

// use makes the Deidentifier pseudonymise with the active keys of ring: the
// analytics key into pseudo_nhs_number, every other domain's into
// domain_pseudonyms. It is called when the KeySource hands out a ring other
// than the one in use, i.e. after a rotation, so the cost of new keyed
// hashes is paid once per rotation, not per record.
func (d *Deidentifier) use(ring *KeyRing) {
	d.ring = ring
	d.others = d.others[:0]
	for _, domain := range ring.Domains() {
		k, _ := ring.Active(domain)
		if domain == DomainAnalytics {
			d.pseudo = NewPseudonymiser(k)
			continue
		}
		d.others = append(d.others, domainPseudonymiser{domain: domain, p: NewPseudonymiser(k)})
	}
}

// domainPseudonyms appends the pseudonym of the normalised digits in every
// domain other than analytics.
func (d *Deidentifier) domainPseudonyms(out *dmicv1.DeidentifiedActivity) {
	for _, o := range d.others {
		out.DomainPseudonyms = append(out.DomainPseudonyms, &dmicv1.DomainPseudonym{
			Domain: o.domain, Pseudonym: o.p.of(&d.digits), KeyVersion: o.p.KeyVersion(),
		})
	}
}
