package cam

// Version is one financial year's Commissioner Assignment Method: its name,
// the dates it applies to, the service-code year it reads, and the rule
// differences from the other years. Versions are values; nothing changes
// them once built.
type Version struct {
	// Name is the financial year, "2025/26".
	Name string
	// ServiceYear is the year as the service code table writes it, "25/26".
	ServiceYear string
	// From and To bound the CAM dates the version applies to, inclusive.
	From, To string
	// Guidance names the published document the rules come from.
	Guidance string
	// Amber is true in 2024/25, whose service list had AMBER services: in
	// scope for delegation but not yet suitable, so kept by NHS England and
	// assigned to the hub of the patient's GP practice (reason C-0b). The
	// 2025/26 guidance removed amber (its "changes from 24/25", item 5).
	Amber bool
}

// versions are the CAM versions dmic knows, oldest first. Unexported and
// never written: Versions returns a copy.
var versions = [...]Version{
	{
		Name: "2024/25", ServiceYear: "24/25", From: "2024-04-01", To: "2025-03-31", Amber: true,
		Guidance: "CAM flow chart 2024/25 as described by the 2025/26 guidance v1.1 (changes from 24/25: amber services)",
	},
	{
		Name: "2025/26", ServiceYear: "25/26", From: "2025-04-01", To: "2026-03-31",
		Guidance: "Commissioner Assignment Method Flow Chart 2025/26: Accompanying Guidance and Reference Tables v1.1 (24 March 2025)",
	},
}

// Versions lists the CAM versions, oldest first.
func Versions() []Version { return append([]Version(nil), versions[:]...) }

// VersionFor returns the version in effect on a CAM date (YYYY-MM-DD). A
// date before the first version gets the first, after the last (or empty)
// the last; exact is then false and the explanation says so.
func VersionFor(date string) (v *Version, exact bool) {
	for i := range versions {
		if date >= versions[i].From && date <= versions[i].To {
			return &versions[i], true
		}
	}
	if date != "" && date < versions[0].From {
		return &versions[0], false
	}
	return &versions[len(versions)-1], false
}

// VersionNamed returns the version called name ("2024/25"), for re-running
// activity under a chosen year's rules.
func VersionNamed(name string) (*Version, bool) {
	for i := range versions {
		if versions[i].Name == name {
			return &versions[i], true
		}
	}
	return nil, false
}
