package staff

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommendation (46 MiB, one pass, one
// lane). They are written into every hash, so raising them later leaves old
// hashes verifiable.
const (
	argonMemory  = 46 * 1024 // KiB
	argonTime    = 1
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password length limits: long enough to resist guessing offline, short
// enough that hashing one cannot be used to exhaust memory.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// argonSlots bounds concurrent hashing: each takes argonMemory.
var argonSlots = make(chan struct{}, 2)

func argonKey(password string, salt []byte, mem uint32, t uint32, threads uint8) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey([]byte(password), salt, t, mem, threads, argonKeyLen)
}

// hashPassword returns the PHC string of an argon2id hash.
func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argonKey(password, salt, argonMemory, argonTime, argonThreads)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("staff: not an argon2id hash")

// checkPassword compares in constant time. An empty hash (an account that
// signs in only with single sign-on) never matches.
func checkPassword(phc, password string) (bool, error) {
	if phc == "" {
		// Spend the same time as a real check, so that timing does not tell
		// which accounts have a password.
		argonKey(password, make([]byte, argonSaltLen), argonMemory, argonTime, argonThreads)
		return false, nil
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errBadHash
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || mem == 0 || mem > 1<<20 || t == 0 || t > 10 || p == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// checkPasswordPolicy says what is wrong with a new password, naming the rule.
func checkPasswordPolicy(username, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("the password is not valid UTF-8")
	case n < MinPasswordLen:
		return fmt.Errorf("the password needs at least %d characters (a passphrase of a few words works well)", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("the password may have at most %d bytes", MaxPasswordLen)
	case strings.Contains(strings.ToLower(password), strings.ToLower(username)):
		return fmt.Errorf("the password must not contain the user name")
	}
	return nil
}
