package refdata

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sampleDir is the committed sample (reference/sample at the repo root).
const sampleDir = "../../../reference/sample"

// sharedDir holds the full public files; tests that need it skip without it.
const sharedDir = "/work/shared/reference"

func loadSample(t testing.TB) *Reference {
	t.Helper()
	r, err := LoadDir(sampleDir)
	if err != nil {
		t.Fatalf("LoadDir(sample): %v", err)
	}
	return r
}

func TestLoadDirSample(t *testing.T) {
	r := loadSample(t)

	t.Run("practice", func(t *testing.T) {
		tests := []struct {
			code, commissioner, status, postcode string
			active                               bool
		}{
			{"H85030", "36L", "A", "SM1 4AF", true},
			{"b84019", "02T", "A", "HX1 2ES", true}, // lower case finds it
			{"A91020", "13Q", "A", "SP4 8QY", true},
			{"B84002", "02T", "C", "HX1 4NJ", false},
			{"W00199", "7A7", "A", "LD3 7RA", true},
		}
		for _, tt := range tests {
			p, ok := r.Practice(tt.code)
			if !ok {
				t.Fatalf("Practice(%s) not found", tt.code)
			}
			if p.Commissioner != tt.commissioner || p.Status != tt.status || p.Postcode != tt.postcode || p.Active() != tt.active {
				t.Errorf("Practice(%s) = %+v", tt.code, p)
			}
		}
		if _, ok := r.Practice("Z99999"); ok {
			t.Error("unknown practice found")
		}
	})

	// Validation rule CODE-031 asks whether a service code is in its
	// financial year's list (cam_service_codes_2024-25_2025-26.csv).
	t.Run("service code listed by year", func(t *testing.T) {
		tests := []struct {
			year, code       string
			listed, haveYear bool
		}{
			{"25/26", "NCBPS01C", true, true},
			{"24/25", "NCBPS01C", true, true},
			{"25/26", " ncbps01c ", true, true}, // as CAM reads it
			{"24/25", "NCBPS22SA", false, true}, // split from NCBPS22S in 2025-26
			{"25/26", "NCBPS22SA", true, true},
			{"25/26", "NCBPH26E", false, true}, // bowel scope, retired: 24/25 list only
			{"24/25", "NCBPH26E", true, true},
			{"25/26", "99999999", true, true},   // the sentinel is a listed code
			{"26/27", "NCBPS01C", false, false}, // no list of that year
		}
		for _, tt := range tests {
			listed, have := r.ServiceCodeListed(tt.year, tt.code)
			if listed != tt.listed || have != tt.haveYear {
				t.Errorf("ServiceCodeListed(%s, %q) = %v, %v; want %v, %v", tt.year, tt.code, listed, have, tt.listed, tt.haveYear)
			}
		}
		var none *Reference
		if l, h := none.ServiceCodeListed("25/26", "NCBPS01C"); l || h {
			t.Error("a nil Reference has lists")
		}
	})

	t.Run("closed practice open before close date", func(t *testing.T) {
		p, _ := r.Practice("B84002") // closed 20210131
		if !p.OpenOn("2021-01-31") || p.OpenOn("2021-02-01") || !p.OpenOn("20150101") || p.OpenOn("") {
			t.Errorf("OpenOn wrong for %+v", p)
		}
		// Not a day: too short, too long (dashes or not), so never open.
		for _, d := range []string{"2021-01", "2021-01-311", "202101311", "2021-01-31-01"} {
			if p.OpenOn(d) {
				t.Errorf("OpenOn(%q) = true", d)
			}
		}
		if n := testing.AllocsPerRun(10, func() { p.OpenOn("2021-01-31") }); n != 0 {
			t.Errorf("OpenOn allocates %.0f times", n)
		}
	})

	t.Run("postcode", func(t *testing.T) {
		tests := []struct {
			pc, subICB, icb, country, lsoa21, la string
			imd                                  int
		}{
			{"SM5 1AA", "36L", "QWE", CountryEngland, "E01004128", "E09000029", 4},
			{"SM2 7HS", "92A", "QXU", CountryEngland, "E01032624", "E07000208", 0},
			{"HX1 1AA", "02T", "QWO", CountryEngland, "E01034582", "E08000033", 0},
			{"HG3 5JL", "36J", "QWO", CountryEngland, "E01027557", "E06000065", 0},
			{"LD1 5AB", "", "", CountryWales, "W01000455", "W06000023", 0},
			{"TD1 1AA", "", "", CountryScotland, "S01019597", "S12000026", 0},
		}
		for _, tt := range tests {
			a, ok := r.Postcode(tt.pc)
			if !ok {
				t.Fatalf("Postcode(%s) not found", tt.pc)
			}
			if a.SubICB != tt.subICB || a.ICB != tt.icb || a.Country != tt.country || a.LSOA21 != tt.lsoa21 || a.LocalAuthority != tt.la {
				t.Errorf("Postcode(%s) = %+v", tt.pc, a)
			}
			if tt.imd != 0 && a.IMDDecile != tt.imd {
				t.Errorf("Postcode(%s) IMD decile = %d, want %d", tt.pc, a.IMDDecile, tt.imd)
			}
			if a.Country == CountryEngland && (a.IMDDecile < 1 || a.IMDDecile > 10) {
				t.Errorf("Postcode(%s) English postcode has no IMD decile", tt.pc)
			}
		}
		// HX1 1AB is terminated (doterm 201504) and is in the sample only to be skipped.
		if _, ok := r.Postcode("HX1 1AB"); ok {
			t.Error("terminated postcode HX1 1AB was loaded")
		}
	})

	t.Run("sub-ICB", func(t *testing.T) {
		s, ok := r.SubICBByONS("E38000245")
		if !ok || s.Code != "36L" || s.ICB != "QWE" || s.Region != "Y56" || s.ICBONS != "E54000031" {
			t.Errorf("SubICBByONS(E38000245) = %+v, %v", s, ok)
		}
		s, ok = r.SubICBByCode("m2l0m") // 5-character code, name with a comma
		if !ok || s.ONSCode != "E38000257" || !strings.Contains(s.Name, "Shropshire, Telford") {
			t.Errorf("SubICBByCode(M2L0M) = %+v, %v", s, ok)
		}
		if _, ok := r.SubICBByCode("13Q"); ok {
			t.Error("13Q is a hub, not a sub-ICB")
		}
	})

	t.Run("trust", func(t *testing.T) {
		for _, code := range []string{"RVR", "RVR00", "rvr01"} {
			tr, ok := r.Trust(code)
			if !ok || tr.Code != "RVR" || tr.Postcode != "SM5 1AA" || tr.ICB != "QWE" || tr.Region != "Y56" {
				t.Errorf("Trust(%s) = %+v, %v", code, tr, ok)
			}
		}
		if tr, ok := r.Trust("G6V2S"); !ok || tr.Code != "G6V2S" {
			t.Errorf("Trust(G6V2S) = %+v, %v (5-character trust code must match whole)", tr, ok)
		}
		if _, ok := r.Trust("ZZZ"); ok {
			t.Error("unknown trust found")
		}
	})

	t.Run("lists", func(t *testing.T) {
		pcs := r.PracticeCodes()
		if len(pcs) < 150 || !sort.StringsAreSorted(pcs) {
			t.Errorf("PracticeCodes: %d codes, sorted=%v", len(pcs), sort.StringsAreSorted(pcs))
		}
		for _, c := range pcs {
			if c == "B84002" || c == "A91020" {
				t.Errorf("PracticeCodes includes %s (closed or not a GP practice)", c)
			}
		}
		codes := r.Postcodes()
		if len(codes) < 2000 || !sort.StringsAreSorted(codes) {
			t.Errorf("Postcodes: %d, sorted=%v", len(codes), sort.StringsAreSorted(codes))
		}
		for _, pc := range codes {
			a, _ := r.Postcode(pc)
			if a.Country != CountryEngland || a.SubICB == "" {
				t.Fatalf("Postcodes includes %s: %+v", pc, a)
			}
		}
		trusts := r.TrustCodes()
		want := []string{"RCD", "RP4", "RVR"}
		if strings.Join(trusts, ",") != strings.Join(want, ",") {
			t.Errorf("TrustCodes = %v, want %v", trusts, want)
		}
	})
}

func TestLoadDirErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	copyFile := func(name string) {
		b, err := os.ReadFile(filepath.Join(sampleDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{PracticesFile, SubICBFile, TrustsFile, "onspd.csv"} {
		copyFile(n)
	}
	if _, err := LoadDir(dir); err != nil {
		t.Fatalf("LoadDir without the optional IMD file: %v", err)
	}

	// Break line 3 of the practice file.
	p := filepath.Join(dir, PracticesFile)
	b, _ := os.ReadFile(p)
	lines := strings.SplitAfter(string(b), "\n")
	lines[2] = "\"X1\",\"short row\"\n"
	os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644)
	_, err := LoadDir(dir)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 3 || !strings.HasSuffix(pe.File, PracticesFile) {
		t.Fatalf("LoadDir with a bad practice row: err = %v, want a ParseError at %s line 3", err, PracticesFile)
	}
	if !strings.Contains(err.Error(), PracticesFile+":3:") {
		t.Errorf("error %q does not name file:line", err)
	}

	// No postcode file at all.
	os.WriteFile(p, b, 0o644)
	os.Remove(filepath.Join(dir, "onspd.csv"))
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "no postcode file") {
		t.Errorf("LoadDir without postcodes: err = %v", err)
	}
}

const practiceRow = `"H85030","NAME, WITH COMMA","Y56","QWE","A1","A2","","SUTTON","","SM1 4AF","19740401","","A","B","36L","20200401","","0208","","","","0","","36L","","4",""`

func TestLoadPractices(t *testing.T) {
	dse := `"A81001","THE DENSHAM SURGERY","Y63","QHM","HEALTH CENTRE","LAWSON STREET","","STOCKTON-ON-TEES","","TS18 1HU","19740401","","ACTIVE","B","16C","20200401","","01642 672351","","","","1","","16C","","RO76",""` + "\r\n" +
		`"A81003","VICTORIA","Y63","QHM","","","","","","TS26 8DB","19740401","20171031","INACTIVE","B","00K","20130401","20171031","","","","","1","","00K","","RO76",""` + "\r\n"
	tests := []struct {
		name     string
		in       string
		wantN    int
		wantLine int // 0: no error
	}{
		{"classic LF", practiceRow + "\n", 1, 0},
		{"classic CRLF, no final newline", practiceRow + "\r\n" + practiceRow, 2, 0},
		{"BOM", "\ufeff" + practiceRow + "\n", 1, 0},
		{"newer ODS export", dse, 2, 0},
		{"short row", practiceRow + "\n\"A1\",\"B\"\n", 0, 2},
		{"bad status", practiceRow + "\n" + strings.Replace(practiceRow, `"A","B"`, `"Q","B"`, 1) + "\n", 0, 2},
		{"bad open date", strings.Replace(practiceRow, "19740401", "1974-04-01", 1), 0, 1},
		{"empty code", strings.Replace(practiceRow, `"H85030"`, `""`, 1), 0, 1},
		{"broken quoting", practiceRow + "\n\"A1\"x,\"B\"\n", 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadPractices(strings.NewReader(tt.in))
			if tt.wantLine != 0 {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line != tt.wantLine {
					t.Fatalf("err = %v, want a ParseError on line %d", err, tt.wantLine)
				}
				if !strings.Contains(err.Error(), "line ") {
					t.Errorf("error %q does not say which line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d practices, want %d", len(got), tt.wantN)
			}
		})
	}
	got, _ := LoadPractices(strings.NewReader(dse))
	if got[0].Status != "A" || !got[0].GPPractice() || got[1].Status != "C" || got[1].Close != "20171031" {
		t.Errorf("newer ODS export not normalised: %+v", got)
	}
}

func TestLoadPostcodes(t *testing.T) {
	onspd := "pcd7,pcd8,pcds,dointr,doterm,usrtypind,lad25cd,wd25cd,nhser24cd,ctry25cd,rgn25cd,pcon24cd,oa11cd,lsoa11cd,msoa11cd,sicbl24cd,lat,long,imd20ind,icb23cd,oa21cd,lsoa21cd,msoa21cd\r\n" +
		`"SM5 1AA","SM5  1AA","SM5 1AA","198001","","1","E09000029","W","E40000003","E92000001","R","P","O","E01004128","E02000841","E38000245",51.38,-0.18,11588,"E54000031","O","E01004128b","E02000841b"` + "\r\n" +
		`"SM1 1AB","SM1  1AB","SM1 1AB","199912","200207","1","E09000029","W","E40000003","E92000001","R","P","O","E01004142","E02000851","E38000245",51.35,-0.19,10196,"E54000031","O","E01034156","E02000851"` + "\r\n"
	nspl := "pcd,pcd2,pcds,dointr,doterm,usertype,laua,ward,nhser,ctry,rgn,pcon,oa11,lsoa11,msoa11,ccg,lat,long,imd,stp\n" +
		`"DT1 1AA","DT1  1AA","DT1 1AA","199002","","1","E06000059","E05012698","E40000006","E92000001","E12000009","E14001031","E00104064","E01032643","E02004277","E38000045",50.715280,-2.444281,23347,"E54000041"` + "\n"

	t.Run("ONSPD 2025 header", func(t *testing.T) {
		got, err := LoadPostcodes(strings.NewReader(onspd))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 { // the terminated SM1 1AB is kept, with its dates
			t.Fatalf("got %d areas, want 2", len(got))
		}
		want := Area{Postcode: "SM5 1AA", LSOA11: "E01004128", LSOA21: "E01004128b", MSOA11: "E02000841", MSOA21: "E02000841b",
			LocalAuthority: "E09000029", Country: CountryEngland, SubICBONS: "E38000245", RegionONS: "E40000003", Introduced: "198001"}
		if got[0] != want {
			t.Errorf("got %+v\nwant %+v", got[0], want)
		}
		if a := got[1]; a.Postcode != "SM1 1AB" || a.Introduced != "199912" || a.Terminated != "200207" || a.Live() || a.LSOA11 != "E01004142" {
			t.Errorf("terminated row = %+v", a)
		}
	})
	t.Run("NSPL 2021 header", func(t *testing.T) {
		got, err := LoadPostcodes(strings.NewReader(nspl))
		if err != nil {
			t.Fatal(err)
		}
		want := Area{Postcode: "DT1 1AA", LSOA11: "E01032643", MSOA11: "E02004277",
			LocalAuthority: "E06000059", Country: CountryEngland, SubICBONS: "E38000045", RegionONS: "E40000006", Introduced: "199002"}
		if len(got) != 1 || got[0] != want {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})
	t.Run("keyed by the canonical form, whatever the file's spacing and case", func(t *testing.T) {
		got, err := LoadPostcodes(strings.NewReader(strings.Replace(nspl, `"DT1  1AA","DT1 1AA"`, `"DT1  1AA"," dt11aa"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Postcode != "DT1 1AA" {
			t.Errorf("got %+v, want one area keyed DT1 1AA", got)
		}
	})
	bad := []struct {
		name string
		in   string
		line int
	}{
		{"not a postcode file", "a,b,c\n1,2,3\n", 1},
		{"empty", "", 1},
		{"short row", onspd + `"SM5 1AB","x"` + "\n", 4},
		{"bad postcode", nspl + strings.Replace(strings.SplitN(nspl, "\n", 2)[1], `"DT1 1AA","DT1  1AA","DT1 1AA"`, `"x","x","not a postcode"`, 1), 3},
		// The one postcode format (package nhs), not a looser one: C is
		// never an inward letter, so no patient's postcode could match it.
		{"postcode breaking the format rules", strings.Replace(onspd, `"SM5 1AA","SM5  1AA","SM5 1AA"`, `"SM5 1CA","SM5  1CA","SM5 1CA"`, 1), 2},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPostcodes(strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != tt.line {
				t.Fatalf("err = %v, want a ParseError on line %d", err, tt.line)
			}
			if strings.Contains(err.Error(), "not a postcode\"") || strings.Contains(err.Error(), "SM5 1AB") {
				t.Errorf("error %q repeats a value", err)
			}
		})
	}
}

func TestLoadSubICBsTrustsIMD(t *testing.T) {
	subs := "ONS_SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_NAME,ONS_ICB_CODE,ICB_CODE,ICB_NAME,ONS_COMM_REGION_CODE,COMM_REGION_CODE,COMM_REGION_NAME\n" +
		`E38000257,M2L0M,"NHS Shropshire, Telford and Wrekin ICB - M2L0M",E54000011,QOC,"NHS Shropshire, Telford and Wrekin Integrated Care Board",E40000011,Y60,Midlands` + "\n"
	if got, err := LoadSubICBs(strings.NewReader(subs)); err != nil || len(got) != 1 || got[0].Code != "M2L0M" || got[0].Region != "Y60" || got[0].RegionONS != "E40000011" {
		t.Errorf("LoadSubICBs = %+v, %v", got, err)
	}
	if _, err := LoadSubICBs(strings.NewReader(subs + "E38000999,,x,E54,QOC,x,E40,Y60,x\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("LoadSubICBs with an empty code: err = %v, want line 3", err)
	}
	if _, err := LoadSubICBs(strings.NewReader("A,B\n1,2\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("LoadSubICBs with a wrong header: err = %v", err)
	}

	etr := `"RVR","EPSOM AND ST HELIER UNIVERSITY HOSPITALS NHS TRUST","Y56","QWE","ST HELIER HOSPITAL","WRYTHE LANE","","CARSHALTON","","SM5 1AA","19990401","","","","","","","020 8296 2000","","","","1","","H","","",""` + "\r\n"
	if got, err := LoadTrusts(strings.NewReader(etr)); err != nil || len(got) != 1 || got[0] != (Trust{Code: "RVR", Name: "EPSOM AND ST HELIER UNIVERSITY HOSPITALS NHS TRUST", Region: "Y56", ICB: "QWE", Postcode: "SM5 1AA"}) {
		t.Errorf("LoadTrusts = %+v, %v", got, err)
	}
	if _, err := LoadTrusts(strings.NewReader(etr + `"RXX","short"` + "\r\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("LoadTrusts with a short row: err = %v, want line 2", err)
	}

	imd := "lsoa21_code,IMD_decile,IMD_rank,IMD_score\nE01000001,8,26525,8.742\n"
	if got, err := LoadIMD(strings.NewReader(imd)); err != nil || got["E01000001"] != 8 {
		t.Errorf("LoadIMD = %v, %v", got, err)
	}
	if _, err := LoadIMD(strings.NewReader(imd + "E01000002,11,1,1\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("LoadIMD with decile 11: err = %v, want line 3", err)
	}
}

// The full published extracts must load with the same code.
func TestLoadFullSharedFiles(t *testing.T) {
	live := func(as []Area) (n int) {
		for _, a := range as {
			if a.Live() {
				n++
			}
		}
		return n
	}
	open := func(t *testing.T, name string) *os.File {
		f, err := os.Open(filepath.Join(sharedDir, name))
		if errors.Is(err, os.ErrNotExist) {
			t.Skipf("%s not present", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	t.Run("onspd_nov2025_extract", func(t *testing.T) {
		got, err := LoadPostcodes(open(t, "onspd_nov2025_extract.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if n := live(got); n != 23857 || len(got) != 36420 { // rows and live rows, per the shared README
			t.Errorf("got %d postcodes, %d live; want 36420, 23857 live", len(got), n)
		}
	})
	t.Run("nspl_nov2021_extract", func(t *testing.T) {
		got, err := LoadPostcodes(open(t, "nspl_nov2021_extract.csv"))
		if err != nil {
			t.Fatal(err)
		}
		// 45,212 rows, 35,199 live (shared README); 111 terminated rows
		// with no area at all are dropped.
		if n := live(got); n != 35199 || len(got) != 45212-111 {
			t.Errorf("got %d postcodes, %d live; want %d, 35199 live", len(got), n, 45212-111)
		}
	})
	t.Run("epraccur both formats", func(t *testing.T) {
		for name, want := range map[string]int{"epraccur.csv": 16685, "epraccur_2026-02_dse-format.csv": 15389} {
			got, err := LoadPractices(open(t, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != want {
				t.Errorf("%s: %d practices, want %d", name, len(got), want)
			}
		}
	})
	t.Run("LoadDir on the shared folder", func(t *testing.T) {
		open(t, "onspd_nov2025_extract.csv")
		r, err := LoadDir(sharedDir)
		if err != nil {
			t.Fatal(err)
		}
		// SR (NSPL 2021) and SM (ONSPD 2025) both resolve.
		for pc, sub := range map[string]string{"SM5 1AA": "36L", "SR4 7TP": "00P"} {
			if a, ok := r.Postcode(pc); !ok || a.SubICB != sub {
				t.Errorf("Postcode(%s) = %+v, %v; want sub-ICB %s", pc, a, ok, sub)
			}
		}
		if n := len(r.PracticeCodes()); n < 6000 {
			t.Errorf("PracticeCodes: %d, want over 6000", n)
		}
	})
}

// The newer ODS "Data Search and Export" epraccur (shared reference README,
// file 2) leaves columns 3 and 4 empty where the classic file (file 1) has
// the non-English codes CAM reads: W00 (2025/26 guidance p.11-12, p.15),
// Q99 and YAC-YAF (p.29, p.37). The rows are copied from
// epraccur_2026-02_dse-format.csv; the wanted codes are those of the same
// practices in epraccur.csv.
func TestLoadPracticesNewerExportGeography(t *testing.T) {
	rows := []struct {
		row                 string
		grouping, geography string
		gp                  bool
	}{
		// Welsh practice, LHB commissioner: classic W00 / Q99.
		{`"W91042","BRYNCABANAU","","","HIGHTOWN","","","WREXHAM","","LL13 7BS","19740401","","ACTIVE","B","7A1","20091001","","01978 367921","","","","1","","7A1","","RO76",""`, "W00", "Q99", true},
		// Defence Medical Services practice in Wales: classic Y99 / Q99.
		{`"A91168","BRAWDY MEDICAL CENTRE","","","THE MEDICAL CENTRE","CAWDOR","BRAWDY","HAVERFORDWEST","","SA62 6NN","20130401","","ACTIVE","B","13Q","20130401","","","","","","1","","13Q","","RO72",""`, "Y99", "Q99", false},
		// Crown Dependencies: classic "" / YAC (Isle of Man), YAD (Jersey), YAE (Guernsey), YAF (Alderney).
		{`"Y00001","CASTLETOWN MEDICAL CENTRE","","","SANDFIELD","","","CASTLETOWN","","IM9 1EX","19740401","","ACTIVE","Z","","","","01624 686939","","","","1","","","","RO72",""`, "", "YAC", false},
		{`"JER002","CLIFDEN SURGERY","","","7 NELSON STREET","ST. HELIER","","JERSEY","","JE2 4TL","19900101","","ACTIVE","Z","","","","01534 726705","","","","1","","","","RO72",""`, "", "YAD", false},
		{`"GUE010","QUEENS ROAD MEDICAL PRAC","","","THE SURGERY","RUE DE LONGFRIE","ST PIERRE","GUERNSEY","","GY7 9RZ","19900101","","ACTIVE","Z","","","","01481 264185","","","","1","","","","RO72",""`, "", "YAE", false},
		{`"ALD210","ISLAND MEDICAL CENTRE","","","SUNDIAL HOUSE","LES ROCQUETTES","ALDERNEY","GUERNSEY","","GY9 3TF","19880321","","ACTIVE","Z","","","","01481 822077","","","","1","","","","RO72",""`, "", "YAF", false},
		// English practice: the export's own codes are kept. Its column 26
		// holds two roles, RO76 (GP practice) among them.
		{`"B81042","MANOR ROAD SURGERY","Y63","QOQ","MANOR ROAD","","","BEVERLEY","","HU17 7BZ","19740401","","ACTIVE","B","02Y","20130401","","01482 862733","","","","1","","02Y","","RO76|RO268",""`, "Y63", "QOQ", true},
	}
	for _, tt := range rows {
		got, err := LoadPractices(strings.NewReader(tt.row + "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		p := got[0]
		if p.NationalGrouping != tt.grouping || p.HighLevelHealthGeography != tt.geography || p.GPPractice() != tt.gp {
			t.Errorf("%s: grouping %q, geography %q, GP practice %v; want %q, %q, %v",
				p.Code, p.NationalGrouping, p.HighLevelHealthGeography, p.GPPractice(), tt.grouping, tt.geography, tt.gp)
		}
	}
	// A classic row keeps what it says, an empty National Grouping of a
	// Crown Dependency practice included (epraccur.csv, ALD210).
	classic := `"ALD210","ISLAND MEDICAL CENTRE","","YAF","SUNDIAL HOUSE","LE VAL","ALDERNEY","","","GY9 3UL","19880321","","A","Z","","","","01481 822077","","","","0","","YAF","","0",""`
	got, err := LoadPractices(strings.NewReader(classic + "\n"))
	if err != nil || got[0].NationalGrouping != "" || got[0].HighLevelHealthGeography != "YAF" {
		t.Errorf("classic ALD210 = %+v, %v", got, err)
	}
}

// Every practice in both shared epraccur files gets the same National
// Grouping and High Level Health Geography from the newer export as from
// the classic file wherever the export leaves them empty, and RO76 in a
// list of roles is a GP practice (shared reference README, files 1 and 2).
func TestNewerExportAgreesWithClassicFile(t *testing.T) {
	load := func(name string) map[string]Practice {
		f, err := os.Open(filepath.Join(sharedDir, name))
		if errors.Is(err, os.ErrNotExist) {
			t.Skipf("%s not present", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ps, err := LoadPractices(f)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]Practice, len(ps))
		for _, p := range ps {
			m[p.Code] = p
		}
		return m
	}
	classic, dse := load("epraccur.csv"), load("epraccur_2026-02_dse-format.csv")
	compared, gp := 0, 0
	for code, n := range dse {
		if strings.Contains(n.PrescribingSetting, "|") && strings.Contains(n.PrescribingSetting, "RO76") {
			gp++
			if !n.GPPractice() {
				t.Errorf("%s: roles %s, not a GP practice", code, n.PrescribingSetting)
			}
		}
		o, ok := classic[code]
		if !ok || !(o.NationalGrouping == "W00" || o.NationalGrouping == "Y99" || strings.HasPrefix(o.HighLevelHealthGeography, "YA")) {
			continue
		}
		if n.NationalGrouping != o.NationalGrouping || n.HighLevelHealthGeography != o.HighLevelHealthGeography {
			// The export moved a few practices into English regions; those
			// keep the export's own codes.
			if n.NationalGrouping != "" && strings.HasPrefix(n.NationalGrouping, "Y") && n.NationalGrouping != "Y99" {
				continue
			}
			t.Errorf("%s: export %q/%q, classic %q/%q", code, n.NationalGrouping, n.HighLevelHealthGeography, o.NationalGrouping, o.HighLevelHealthGeography)
		}
		compared++
	}
	if compared < 700 || gp != 6 {
		t.Errorf("compared %d non-English practices (want over 700), %d multi-role GP practices (want 6)", compared, gp)
	}
}

// IMD 2025 is published by LSOA 2021 and IMD 2019 by LSOA 2011 (shared
// reference README, files 8 and 9); New joins deciles to a postcode's LSOA
// 2021, so a file keyed by LSOA 2011 must be refused, not joined.
func TestLoadIMDWantsLSOA2021(t *testing.T) {
	// The header and first row of imd2019_lsoa11.csv.
	imd2019 := "lsoa11_code,IMD_decile,Income_decile,Employment_decile,Education_decile,Health_decile,Crime_decile,Housing_and_Access_decile,Environment_decile,IMD_rank,Income_rank,Employment_rank,Education_rank,Health_rank,Crime_rank,Housing_and_Access_rank,Environment_rank\n" +
		"E01000001,9,10,10,10,10,10,3,3,29199,32831,32742,32842,32113,32662,7319,7789\n"
	_, err := LoadIMD(strings.NewReader(imd2019))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), "LSOA 2021") {
		t.Errorf("LoadIMD(IMD 2019 by LSOA 2011): err = %v, want a line-1 error asking for LSOA 2021", err)
	}
	// The IoD File 7 spreadsheets name their columns in words ("LSOA code
	// (2021)"; the wording is background knowledge, not checked against the
	// 2025 release); the decile is that of imd2025_lsoa21.csv's first row.
	file7 := "LSOA code (2021),LSOA name (2021),Local Authority District code (2024),Local Authority District name (2024),Index of Multiple Deprivation (IMD) Score,Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived),Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)\n" +
		"E01000001,City of London 001A,E09000001,City of London,8.742,26525,8\n"
	if got, err := LoadIMD(strings.NewReader(file7)); err != nil || got["E01000001"] != 8 {
		t.Errorf("LoadIMD(File 7 header) = %v, %v; want E01000001 decile 8", got, err)
	}
}

// A patient's postcode is found in the directory live or terminated (CAM
// guidance p.11-12: "the matching record" of the postcode directory, with
// no date; shared reference README, files 10 and 11: the ONSPD keeps
// terminated postcodes with the areas they lay in), while an
// organisation's current address is looked up among live postcodes only.
// The rows are those of reference/sample/onspd.csv.
func TestPostcodeOfResidence(t *testing.T) {
	r := loadSample(t)
	// HX1 1AB: dointr 201209, doterm 201504. HX1 1AD: doterm 202506.
	// HX3 8FY and SM5 1AA: live.
	for _, pc := range []string{"HX1 1AB", "HX1 1AD", "HX3 8FY", "SM5 1AA"} {
		a, ok := r.PostcodeOfResidence(pc)
		if !ok || a.Postcode != pc || a.Country != CountryEngland || a.LSOA11 == "" || a.LSOA21 == "" || a.SubICB == "" || a.ICB == "" {
			t.Errorf("PostcodeOfResidence(%s) = %+v, %v; want its areas", pc, a, ok)
		}
	}
	if a, ok := r.PostcodeOfResidence("HX1 1AB"); !ok || a.LSOA11 != "E01010994" || a.LSOA21 != "E01034582" || a.SubICB != "02T" || a.ICB != "QWO" || a.Live() {
		t.Errorf("PostcodeOfResidence(HX1 1AB) = %+v, %v; want LSOA11 E01010994, LSOA21 E01034582, 02T, QWO, terminated", a, ok)
	}
	for _, pc := range []string{"HX1 1AB", "HX1 1AD"} {
		if _, ok := r.Postcode(pc); ok {
			t.Errorf("Postcode(%s) found a terminated postcode", pc)
		}
	}
	// Any spelling of a postcode finds the same row (domain brief §3,
	// "Postcode format": upper-case, strip spaces, one space before the
	// last three; ONSPD pcd is the 7-character form, pcd2 the 8-character).
	for _, pc := range []string{"hx11ab", "HX11AB", "HX1  1AB", " hx1 1ab "} {
		if a, ok := r.PostcodeOfResidence(pc); !ok || a.Postcode != "HX1 1AB" {
			t.Errorf("PostcodeOfResidence(%q) = %+v, %v; want HX1 1AB", pc, a, ok)
		}
	}
	for _, pc := range []string{"sm51aa", "SM5  1AA", "SM51AA"} {
		if a, ok := r.Postcode(pc); !ok || a.Postcode != "SM5 1AA" {
			t.Errorf("Postcode(%q) = %+v, %v; want SM5 1AA", pc, a, ok)
		}
	}
	if _, ok := r.Postcode("SM5-1AA"); ok {
		t.Error("Postcode(SM5-1AA) found: a hyphen is not a spelling of a postcode")
	}
	if _, ok := r.PostcodeOfResidence("ZZ1 1ZZ"); ok {
		t.Error("an unknown postcode was found")
	}
	for _, pc := range r.Postcodes() {
		if pc == "HX1 1AB" || pc == "HX1 1AD" {
			t.Errorf("Postcodes() lists terminated %s", pc)
		}
	}
	if n := testing.AllocsPerRun(10, func() { r.PostcodeOfResidence("HX1 1AB") }); n != 0 {
		t.Errorf("PostcodeOfResidence allocates %.0f times", n)
	}
}
