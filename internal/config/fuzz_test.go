package config

import (
	"errors"
	"strings"
	"testing"
)

// Configuration comes from the environment and the command line: any value
// of any variable either loads into a configuration that validates and
// prints back to the same one, or is refused with one line naming a variable
// or flag that exists.
func FuzzLoad(f *testing.F) {
	names := map[string]bool{"flags": true}
	var envs []string
	for _, fd := range fields() {
		envs = append(envs, fd.env)
		names[fd.env], names["--"+fd.flag] = true, true
		if fd.secret {
			names[fd.env+"_FILE"] = true
		}
	}
	for k := range renamed {
		names[k] = true
	}
	f.Add(uint8(0), "127.0.0.1:0", "")
	f.Add(uint8(2), "postgres://u:p@db:5432/ferry?sslmode=require", "")
	f.Add(uint8(2), "postgres://%zz", "")
	f.Add(uint8(14), "-3", "--request-log-days=61")
	f.Add(uint8(5), "aws-kms://arn:aws:kms:us-west-2:1:key/k", "--kms-endpoint=http://127.0.0.1:1")
	f.Add(uint8(20), "30d", "--purge-grace=abc")
	f.Add(uint8(1), "dir?x#y%", "--addr")
	f.Fuzz(func(t *testing.T, which uint8, value, flagArg string) {
		env := map[string]string{envs[int(which)%len(envs)]: value}
		var args []string
		if flagArg != "" {
			args = []string{flagArg}
		}
		cfg, _, err := Load("serve", args, func(k string) string { return env[k] }, nil)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v: not a configuration error", err)
			}
			if !names[ce.Var] || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q names %q, not one line about a known variable", err, ce.Var)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded, then invalid: %v", err)
		}
	})
}
