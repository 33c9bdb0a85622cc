package main

import (
	"os"
	"strings"
	"testing"
)

// TestRunFlagErrors: a bad --algorithms or --aaguid is a usage error that
// says what is wanted.
func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct{ algs, aaguid, want string }{
		{"ES256,ES999", "", "unknown algorithm"},
		{"ES256,es256", "", "listed twice"},
		{"-19", "", "unknown algorithm"},
		{"", "not-a-uuid", "is not a UUID"},
		{"", "cb69481e8ff7403993ec0a2729a154a8", "is not a UUID"},
	} {
		o := &runOptions{transport: "auto", keys: "auto", uv: "none", name: "x", algorithms: tc.algs, aaguid: tc.aaguid}
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--algorithms %q --aaguid %q: %v, want %q", tc.algs, tc.aaguid, err, tc.want)
		}
	}
	got, err := parseAlgorithms(" PS256, es512 ,EdDSA,-7")
	if err != nil || len(got) != 4 || got[0] != -37 || got[1] != -36 || got[2] != -8 || got[3] != -7 {
		t.Errorf("parseAlgorithms: %v %v", got, err)
	}
}

// TestDoctorAndUdevRules: doctor prints a fix for every failed check; the
// udev rules cover /dev/uhid and FIDO hidraw nodes for the logged-in user.
func TestDoctorAndUdevRules(t *testing.T) {
	var b strings.Builder
	problems := doctor(&b)
	out := b.String()
	if strings.Count(out, "FAIL") != problems || strings.Count(out, "fix: ") != problems {
		t.Errorf("%d problems, output:\n%s", problems, out)
	}
	for _, check := range []string{"uhid kernel module", "/dev/uhid writable", "FIDO hidraw nodes", "TPM 2.0"} {
		if !strings.Contains(out, check) {
			t.Errorf("doctor does not check %q:\n%s", check, out)
		}
	}
	if _, err := os.Stat("/dev/uhid"); err != nil && !strings.Contains(out, "sudo modprobe uhid") {
		t.Errorf("without /dev/uhid doctor must say how to load it:\n%s", out)
	}
	for _, want := range []string{`KERNEL=="uhid"`, `TAG+="uaccess"`, `KERNEL=="hidraw*"`, "06d0f1"} {
		if !strings.Contains(udevRules, want) {
			t.Errorf("udev rules lack %s", want)
		}
	}
}
