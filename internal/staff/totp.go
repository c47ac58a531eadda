package staff

import (
	"crypto/subtle"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP as authenticator apps expect it (RFC 6238 defaults): 6 digits, 30 s
// steps, SHA-1. One step either side is accepted for clock drift.
const (
	totpPeriod = 30
	totpSkew   = 1
	// TOTPIssuer names Ferry in authenticator apps.
	TOTPIssuer = "Ferry staff console"
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// newTOTP makes a fresh secret for an account; URL is the otpauth:// URL an
// authenticator app takes.
func newTOTP(username string) (secret, url string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: TOTPIssuer, AccountName: username, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return "", "", err
	}
	return k.Secret(), k.URL(), nil
}

// TOTPURL is the otpauth:// URL for a secret.
func TOTPURL(username, secret string) string {
	k, err := otp.NewKeyFromURL("otpauth://totp/" + TOTPIssuer + ":" + username + "?secret=" + secret + "&issuer=" + TOTPIssuer)
	if err != nil {
		return ""
	}
	return k.URL()
}

// totpStep returns the time step the code belongs to, or 0 when it matches
// none of the steps around now. The caller refuses a step it has seen.
func totpStep(secret, code string, now time.Time) int64 {
	if len(code) != 6 {
		return 0
	}
	cur := now.Unix() / totpPeriod
	var found int64
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0
		}
		// Check every step, found or not, so timing says nothing.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found == 0 {
			found = step
		}
	}
	return found
}

// TOTPCode computes the current code for a secret (the demo and tests sign
// in with it, as an authenticator app would).
func TOTPCode(secret string, now time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, now, totpOpts)
}
