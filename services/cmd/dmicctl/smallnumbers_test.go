package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmic-nhs/dmic/services/internal/chaccess"
	"github.com/dmic-nhs/dmic/services/internal/chstore"
	"github.com/dmic-nhs/dmic/services/internal/chstore/chstoretest"
)

// TestSmallNumbers writes activity with known combination sizes (see
// chstoretest.SmallNumbersActivity) to a real ClickHouse and reads the small
// ones back with `dmicctl small-numbers`.
func TestSmallNumbers(t *testing.T) {
	conn, cfg := chstoretest.Database(t, "dmicctl_small")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	analyst := chstoretest.Args(chstoretest.As(t, cfg, chaccess.Analyst))
	w := chstore.NewWriter(conn, cfg.Database)
	for _, b := range chstoretest.SmallNumbersActivity() {
		if err := w.WriteActivity(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2025, 7, 20, 12, 0, 0, 0, time.UTC)
	sn := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := smallNumbers(ctx, append(slices.Clone(analyst), args...), &out, &errOut, time.Minute, now)
		return out.String(), errOut.String(), code
	}
	// table returns the data rows of the output, columns single-spaced.
	space := regexp.MustCompile(` {2,}`)
	table := func(out string) []string {
		var rows []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "provider ") || strings.HasPrefix(l, "national ") {
				rows = append(rows, space.ReplaceAllString(strings.TrimSpace(l), " "))
			}
		}
		return rows
	}
	const (
		a     = "provider 2025-03 65-69 2 E01000001 2 2"
		b     = "provider 2025-03 65-69 1 E01000001 4 2"
		c     = "provider 2025-03 65-69 2 E01000002 5 5"
		d     = "provider 2025-04 0 1 - 2 1"
		e     = "provider 2025-04 30-34 2 E01009999 5 5"
		fProv = "provider 2025-05 90+ 9 E01000003 6 6"
		i     = "provider 2025-06 50-54 1 E01000005 4 4"
		j     = "provider 2025-07 50-54 1 E01000005 1 1"
		fNat  = "national 2025-05 90+ 9 E01000003 2 2"
	)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"default: k 5, the last three months (May to July)", nil, []string{fNat, i, j}},
		{"all months", []string{"-months", "0"}, []string{fNat, b, a, d, i, j}},
		{"-k 6", []string{"-months", "0", "-k", "6"}, []string{fNat, b, a, c, d, e, i, j}},
		{"-k 7", []string{"-months", "0", "-k", "7"}, []string{fNat, b, a, c, d, e, fProv, i, j}},
		{"-k 2", []string{"-months", "0", "-k", "2"}, []string{j}},
		{"-provider", []string{"-months", "0", "-provider", "RJ7"}, []string{"provider 2025-03 65-69 2 E01000001 1 1"}},
		{"-dataset, abbreviated", []string{"-months", "0", "-dataset", "APC", "-source", "provider"},
			[]string{b, "provider 2025-03 65-69 2 E01000001 1 1", d, i, j}},
		{"-source sus", []string{"-months", "0", "-source", "sus"}, []string{fNat}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := sn(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			t.Log("\n" + out)
			if !regexp.MustCompile(`(?m)^SOURCE +MONTH +AGE_BAND +SEX +LSOA +RECORDS +PATIENTS$`).MatchString(out) {
				t.Errorf("no header:\n%s", out)
			}
			if got := table(out); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rows =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if !strings.Contains(out, "suppress or aggregate") {
				t.Errorf("no guidance line:\n%s", out)
			}
		})
	}

	t.Run("nothing small", func(t *testing.T) {
		out, _, code := sn(t, "-months", "1", "-provider", "RJ7")
		want := "No combination of age band, sex, LSOA and month has fewer than 5 records for provider RJ7, in activity since 2025-07."
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("exit %d, output %q, want %q", code, out, want)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"-k", "1"}, {"-k", "0"}, {"-k", "x"}, {"-dataset", "dental"}, {"-source", "elsewhere"}, {"-months", "-1"}, {"extra"}} {
			if _, errOut, code := sn(t, args...); code != 2 || errOut == "" {
				t.Errorf("small-numbers %v: exit %d, stderr %q; want 2 and a reason", args, code, errOut)
			}
		}
	})

	t.Run("dmicctl dispatches small-numbers", func(t *testing.T) {
		// An unknown command exits 2 with the usage; this one succeeds.
		if code := run(append([]string{"small-numbers"}, analyst...)); code != 0 {
			t.Errorf("dmicctl small-numbers: exit %d, want 0", code)
		}
	})

	t.Run("no ClickHouse schema", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := smallNumbers(ctx, append(slices.Clone(analyst), "-clickhouse-database", "dmicctl_missing"), &out, &errOut, time.Minute, now)
		if code != 1 || !strings.Contains(errOut.String(), "activity") {
			t.Errorf("exit %d, stderr %q; want 1 naming the activity table", code, errOut.String())
		}
	})
}
