package profiles

import (
	"math/rand"
	"regexp"
	"testing"
)

// The regexps the hand-written matchers replace; the matchers must accept
// exactly what these accept.
var (
	appArmorNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	tmpfsSizeRE    = regexp.MustCompile(`^[1-9][0-9]*[kKmMgG%]?$`)
	quantityRE     = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$`)
)

var quantityMult = map[string]int64{
	"": 1, "k": 1000, "K": 1000, "M": 1000 * 1000, "G": 1000 * 1000 * 1000, "T": 1000 * 1000 * 1000 * 1000,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}

func checkMatchers(t *testing.T, s string) {
	t.Helper()
	if got, want := validAppArmorName(s), appArmorNameRE.MatchString(s); got != want {
		t.Errorf("validAppArmorName(%q) = %v, the regexp says %v", s, got, want)
	}
	if got, want := validTmpfsSize(s), tmpfsSizeRE.MatchString(s); got != want {
		t.Errorf("validTmpfsSize(%q) = %v, the regexp says %v", s, got, want)
	}
	digits, mult, ok := splitQuantity(s)
	m := quantityRE.FindStringSubmatch(s)
	if ok != (m != nil) {
		t.Errorf("splitQuantity(%q) ok = %v, the regexp says %v", s, ok, m != nil)
		return
	}
	if ok && (digits != m[1] || mult != quantityMult[m[2]]) {
		t.Errorf("splitQuantity(%q) = %q, %d; the regexp says %q, %d", s, digits, mult, m[1], quantityMult[m[2]])
	}
}

// TestNameMatchersMatchRegexps compares the matchers with the regexps on
// every string of up to four characters over an alphabet of the characters
// they treat specially and their neighbours, and on random longer ones.
func TestNameMatchersMatchRegexps(t *testing.T) {
	alphabet := []string{"0", "1", "9", "a", "z", "A", "Z", "K", "M", "G", "T", "k", "m", "g", "i", "%", "_", ".", "-", "/", " ", "\n", "é", "\x00"}
	var walk func(prefix string, depth int)
	n := 0
	walk = func(prefix string, depth int) {
		checkMatchers(t, prefix)
		n++
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, depth-1)
		}
	}
	walk("", 4)
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		b := make([]byte, 0, 16)
		for j := r.Intn(16); j > 0; j-- {
			b = append(b, alphabet[r.Intn(len(alphabet))]...)
		}
		checkMatchers(t, string(b))
		n++
	}
	for _, s := range []string{"harden-default", "docker-default", "64m", "100%", "512Mi", "2Gi", "1G", "536870912", "0", "00", "010k", "1kk", "1Kii"} {
		checkMatchers(t, s)
	}
	t.Logf("%d strings compared", n)
}
