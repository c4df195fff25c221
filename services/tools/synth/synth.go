// Package synth generates deterministic, realistic synthetic CDS-like
// commissioning records in the provider JSON format: provider submissions
// with a known share of deliberately bad records, national (SUS) copies of
// the same activities with a known share of disagreements, national-only
// activities, revisions and deletes. Every item says what it is, so tests can
// compute what a correct pipeline must end up with (see Expect).
//
// All values are made up: NHS numbers pass Modulus 11 but are random, dates
// of birth are random; postcodes and practices come from the caller.
package synth

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	dmicv1 "github.com/dmic-nhs/dmic/proto/dmic/v1"
)

// NationalSubmitter is the organisation code national copies are submitted
// under: X26, NHS England (the SUS exchange).
const NationalSubmitter = nationalSubmitterCode

// Rule ids a bad record can be made to break.
const (
	RuleNHSModulus11 = "NHS-002"  // NHS number fails Modulus 11
	RuleDOBTooEarly  = "DOB-002"  // date of birth before 1880-01-01
	RuleDOBAfter     = "DOB-003"  // date of birth after the activity date
	RuleRequired     = "REQ-001"  // a required field is missing
	RulePostcode     = "PC-001"   // postcode of usual address is malformed
	RuleDecode       = "DEC-JSON" // the line is not a JSON object
)

// Item is one generated record, in stream order, with what the generator
// knows about it.
type Item struct {
	Source  dmicv1.Source
	Dataset dmicv1.Dataset
	// Submitter is the provider code for provider copies, NationalSubmitter for national ones.
	Submitter string
	// Provider is the record's provider_code (the same for both copies of an activity).
	Provider string
	// RecordID is the cds_unique_identifier the record carries; "" when the
	// record was made to lack it. For DEC-JSON lines it is the identifier the
	// line would have carried.
	RecordID string
	// JSON is one provider-format JSON object with "dataset" set and no
	// trailing newline. For DEC-JSON items it is one line that does not decode.
	JSON []byte
	// Bad lists the rule ids this record was made to break (empty for good records).
	Bad []string
	// BadField is the field that breaks the rule ("" for DEC-JSON and good records).
	BadField string
	// Differs names the field that differs: for a national copy, from the
	// local copy's final version; for a revision, from the version it replaces.
	Differs string
	// Revision is set on a provider record re-sent with the same identifier,
	// a later cds_applicable_date_time and one changed field.
	Revision bool
	// Delete is set on a provider record with cds_update_type "1" that deletes
	// an earlier good record.
	Delete bool
	// NationalOnly is set on national copies of activities no provider submitted.
	NationalOnly bool
	// CAM is set on the record of a CAM scenario (a provider record, or for
	// a provider the run is not given a national-only one): what
	// commissioner assignment must make of it (see Config.CAMShare).
	CAM *CAMExpectation
	// ActivityDate is the record's activity date (YYYY-MM-DD), "" when the record lacks it.
	ActivityDate string
	// Patient-identifiable values the record carries, so tests can look for
	// leaks downstream; "" when absent.
	NHSNumber      string
	BirthDate      string
	Postcode       string
	LocalPatientID string
}

// Generate is deterministic: the same Config gives byte-identical Items in
// the same order.
func Generate(c Config) ([]Item, error) {
	var items []Item
	if c.Records > 0 {
		items = make([]Item, 0, c.Records+c.Records*9/10)
	}
	err := Stream(c, func(it Item) error {
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// Stream calls fn for each item, in the same order and with the same content
// as Generate, holding only a bounded window of scheduled items (national
// copies, revisions and deletes follow their activity by at most a few
// thousand activities). It stops at the first error fn returns.
func Stream(c Config, fn func(Item) error) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("synth: invalid config: %w", err)
	}
	g := newGenerator(c.withDefaults())
	return g.run(fn)
}

// How far behind its activity a scheduled item comes, in activities.
const (
	nationalDelayMin, nationalDelaySpan = 50, 1500
	revisionDelayMin, revisionDelaySpan = 10, 400
	deleteDelayMin, deleteDelaySpan     = 10, 600
	patientPoolSize                     = 4096
	patientReuseShare                   = 0.3
)

type patient struct {
	nhs, status, localID string
	dob                  int // days since epoch
	postcode             string
	gender, ethnic       string
	practice             string
}

// activity is one generated good record and what later variants need.
type activity struct {
	ds          dmicv1.Dataset
	provider    string
	uid         string
	day         int   // activity date
	applicable  int64 // cds_applicable_date_time, seconds since epoch
	pat         patient
	rec         record // valid until the next newActivity, which reuses its storage
	lastInSpell bool   // apc: the episode closes its spell (has a discharge)
}

// pending is a scheduled item: its place in the stream and the slot of
// generator.slots holding it. Keeping Items out of the heap means sifting
// moves three integers, not a struct full of pointers.
type pending struct {
	due, seq, slot int
}

// pendingHeap is a min-heap on (due, seq). It is hand-written rather than
// container/heap so that items are not boxed into interfaces on every push.
type pendingHeap []pending

func (h pendingHeap) less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}

func (h *pendingHeap) push(p pending) {
	*h = append(*h, p)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *pendingHeap) pop() pending {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, m) {
			m = l
		}
		if r < len(q) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

type generator struct {
	c               Config
	rng             *rand.Rand
	startDay, span  int
	minDOB          int
	datasets        []weightedDataset
	cdsDatasets     []weightedDataset // those with national copies
	pool            []patient
	poolN           int
	scratch         record  // dataset-specific fields of the activity being built
	recBuf          []field // backs activity.rec, reused from one activity to the next
	slots           []Item  // scheduled items, indexed by pending.slot
	freeSlots       []int
	serial          uint64
	pending         pendingHeap
	seq             int
	emitted         int
	apcTFCs, opTFCs []string
	fn              func(Item) error
	// CAM scenarios: the book of this run's datasets, the share of
	// activities that are scenarios, the share owed so far, and the next.
	book    []camScenario
	camRate float64
	camOwed float64
	camNext int
	camBuf  []field
}

type weightedDataset struct {
	ds dmicv1.Dataset
	w  int
}

// Relative volumes: outpatients dominate, as they do in real submissions.
var datasetWeights = map[dmicv1.Dataset]int{
	dmicv1.Dataset_DATASET_APC:            25,
	dmicv1.Dataset_DATASET_OUTPATIENT:     50,
	dmicv1.Dataset_DATASET_EMERGENCY_CARE: 20,
	dmicv1.Dataset_DATASET_LOCAL_FLOW:     10,
}

func newGenerator(c Config) *generator {
	// The second PCG word is derived from the seed so one int64 fixes the stream.
	s := uint64(c.Seed)
	g := &generator{
		c:        c,
		rng:      rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
		startDay: dayOf(c.Start),
		minDOB:   daysFromCivil(1930, 1, 1),
		pool:     make([]patient, patientPoolSize),
	}
	g.span = dayOf(c.End) - g.startDay
	for _, d := range c.Datasets {
		wd := weightedDataset{d, datasetWeights[d]}
		g.datasets = append(g.datasets, wd)
		if d != dmicv1.Dataset_DATASET_LOCAL_FLOW {
			g.cdsDatasets = append(g.cdsDatasets, wd)
		}
	}
	g.apcTFCs = uniqueTFCs(len(apcCases), func(i int) string { return apcCases[i].tfc })
	g.opTFCs = uniqueTFCs(len(opClinics), func(i int) string { return opClinics[i].tfc })
	g.serial = 100_000_000_000 + g.rng.Uint64N(400_000_000_000)
	g.book = camBookFor(c)
	g.camRate = camRate(c, len(g.book))
	if len(g.book) > 0 {
		g.camNext = int(uint64(c.Seed) % uint64(len(g.book)))
	}
	return g
}

func uniqueTFCs(n int, f func(int) string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		if t := f(i); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func (g *generator) run(fn func(Item) error) error {
	g.fn = fn
	for i := 0; i < g.c.Records; i++ {
		if err := g.flush(i); err != nil {
			return err
		}
		if err := g.tick(i); err != nil {
			return err
		}
	}
	return g.flush(-1)
}

// flush emits the scheduled items due by tick upto; -1 emits all of them.
func (g *generator) flush(upto int) error {
	for len(g.pending) > 0 && (upto < 0 || g.pending[0].due <= upto) {
		p := g.pending.pop()
		it := g.slots[p.slot]
		g.slots[p.slot] = Item{} // let the item's JSON go
		g.freeSlots = append(g.freeSlots, p.slot)
		if err := g.emit(it); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) emit(it Item) error {
	if err := g.fn(it); err != nil {
		return fmt.Errorf("synth: consumer stopped at item %d: %w", g.emitted, err)
	}
	g.emitted++
	return nil
}

func (g *generator) schedule(due int, it Item) {
	var slot int
	if n := len(g.freeSlots); n > 0 {
		slot = g.freeSlots[n-1]
		g.freeSlots = g.freeSlots[:n-1]
		g.slots[slot] = it
	} else {
		slot = len(g.slots)
		g.slots = append(g.slots, it)
	}
	g.pending.push(pending{due: due, seq: g.seq, slot: slot})
	g.seq++
}

// tick generates provider activity i and schedules what follows from it.
// The order of random draws here is part of the output: change it and every
// stream changes.
func (g *generator) tick(i int) error {
	ds := g.pickDataset(g.datasets)
	bad := g.rng.Float64() < g.c.BadShare
	// A CAM scenario takes the place of a good activity; one whose turn
	// falls on a bad record passes to the next good one.
	g.camOwed += g.camRate
	var scenario, national *camScenario
	if !bad && g.camOwed >= 1 {
		g.camOwed--
		scenario = &g.book[g.camNext]
		g.camNext = (g.camNext + 1) % len(g.book)
		if scenario.national {
			// On top of this tick's provider activity, like a national-only
			// activity; made last, as its record reuses the buffers.
			scenario, national = nil, scenario
		}
	}
	var a activity
	if scenario != nil {
		a = g.camActivity(scenario)
	} else {
		a = g.newActivity(ds)
	}
	if bad {
		if err := g.emit(g.badItem(&a)); err != nil {
			return err
		}
	} else {
		orig := g.item(&a, &a.rec, dmicv1.Source_SOURCE_PROVIDER)
		if scenario != nil {
			orig.CAM = scenario.expectation(a.rec.get("commissioner_code"))
		}
		if err := g.emit(orig); err != nil {
			return err
		}
		base, baseJSON := &a.rec, orig.JSON
		natAfter := 0
		deleted := false
		switch u := g.rng.Float64(); {
		case scenario != nil:
			// A scenario stays as made: revising or deleting it would
			// change or drop what its expectation is about.
		case u < g.c.RevisionShare:
			rev, changed := g.revise(&a)
			due := i + revisionDelayMin + g.rng.IntN(revisionDelaySpan)
			it := g.item(&a, &rev, dmicv1.Source_SOURCE_PROVIDER)
			it.Revision, it.Differs = true, changed
			g.schedule(due, it)
			// The national copy is taken after the provider's latest version.
			base, baseJSON, natAfter = &rev, it.JSON, due+1
		case u < g.c.RevisionShare+g.c.DeleteShare:
			del := a.rec.clone()
			del.set("cds_update_type", "1")
			del.set("cds_applicable_date_time", dateTimeString(g.later(a.applicable)))
			it := g.item(&a, &del, dmicv1.Source_SOURCE_PROVIDER)
			it.Delete = true
			g.schedule(i+deleteDelayMin+g.rng.IntN(deleteDelaySpan), it)
			deleted = true
		}
		// A deleted activity has left SUS by the time of the national extract.
		if !deleted && a.ds != dmicv1.Dataset_DATASET_LOCAL_FLOW && g.rng.Float64() < g.c.NationalShare {
			var it Item
			if g.rng.Float64() < g.c.DisagreeShare {
				nat := base.clone()
				differs := g.disagree(&a, &nat)
				it = g.item(&a, &nat, dmicv1.Source_SOURCE_NATIONAL)
				it.Differs = differs
			} else {
				// Same bytes as the local version; copied so no two items share memory.
				it = g.itemWithJSON(&a, base, dmicv1.Source_SOURCE_NATIONAL, bytes.Clone(baseJSON))
			}
			g.schedule(max(i+nationalDelayMin+g.rng.IntN(nationalDelaySpan), natAfter), it)
		}
	}
	if len(g.cdsDatasets) > 0 && g.rng.Float64() < g.c.NationalOnlyShare {
		b := g.newActivity(g.pickDataset(g.cdsDatasets))
		it := g.item(&b, &b.rec, dmicv1.Source_SOURCE_NATIONAL)
		it.NationalOnly = true
		g.schedule(i+nationalDelayMin+g.rng.IntN(nationalDelaySpan), it)
	}
	if national != nil {
		b := g.camActivity(national)
		it := g.item(&b, &b.rec, dmicv1.Source_SOURCE_NATIONAL)
		it.NationalOnly = true
		it.CAM = national.expectation(b.rec.get("commissioner_code"))
		g.schedule(i+nationalDelayMin+g.rng.IntN(nationalDelaySpan), it)
	}
	return nil
}

// later returns an applicable date/time 1–30 days after t.
func (g *generator) later(t int64) int64 {
	return t + int64(1+g.rng.IntN(30))*86400 + int64(g.rng.IntN(86400))
}

func (g *generator) item(a *activity, rec *record, src dmicv1.Source) Item {
	return g.itemWithJSON(a, rec, src, rec.json())
}

// itemWithJSON is item for a record whose JSON is already rendered.
func (g *generator) itemWithJSON(a *activity, rec *record, src dmicv1.Source, js []byte) Item {
	it := Item{
		Source:         src,
		Dataset:        a.ds,
		Submitter:      a.provider,
		Provider:       a.provider,
		RecordID:       rec.get("cds_unique_identifier"),
		JSON:           js,
		ActivityDate:   activityDate(a.ds, rec),
		NHSNumber:      rec.get("nhs_number"),
		BirthDate:      rec.get("person_birth_date"),
		Postcode:       rec.get("postcode_of_usual_address"),
		LocalPatientID: rec.get("local_patient_identifier"),
	}
	if src == dmicv1.Source_SOURCE_NATIONAL {
		it.Submitter = NationalSubmitter
	}
	return it
}

// activityDate follows the shared definition: apc end_date_episode (else
// start_date_episode), outpatient appointment_date, emergency care
// ec_arrival_date, local flow activity_date.
func activityDate(ds dmicv1.Dataset, rec *record) string {
	switch ds {
	case dmicv1.Dataset_DATASET_APC:
		if d := rec.get("end_date_episode"); d != "" {
			return d
		}
		return rec.get("start_date_episode")
	case dmicv1.Dataset_DATASET_OUTPATIENT:
		return rec.get("appointment_date")
	case dmicv1.Dataset_DATASET_EMERGENCY_CARE:
		return rec.get("ec_arrival_date")
	case dmicv1.Dataset_DATASET_LOCAL_FLOW:
		return rec.get("activity_date")
	}
	return ""
}

// pickWeighted draws one element of ws with probability proportional to its weight.
func pickWeighted[E any](rng *rand.Rand, ws []E, weight func(E) int) E {
	total := 0
	for _, w := range ws {
		total += weight(w)
	}
	r := rng.IntN(total)
	for _, w := range ws {
		if r < weight(w) {
			return w
		}
		r -= weight(w)
	}
	return ws[len(ws)-1]
}

func (g *generator) pickDataset(ws []weightedDataset) dmicv1.Dataset {
	return pickWeighted(g.rng, ws, func(w weightedDataset) int { return w.w }).ds
}

func (g *generator) pickW(ws []weighted) string {
	return pickWeighted(g.rng, ws, func(w weighted) int { return w.w }).v
}

func (g *generator) pickIndex(n int, weight func(int) int) int {
	total := 0
	for i := 0; i < n; i++ {
		total += weight(i)
	}
	r := g.rng.IntN(total)
	for i := 0; i < n; i++ {
		if r < weight(i) {
			return i
		}
		r -= weight(i)
	}
	return n - 1
}

func (g *generator) digits(n int) string {
	var b [20]byte
	for i := 0; i < n; i++ {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	return string(b[:n])
}
