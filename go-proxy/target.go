package main

import (
	"bytes"
	"errors"
)

// target is what the upstream's request line and Host field get from the
// client's request target (RFC 9112 3.2).
type target struct {
	// uri is forwarded on the request line: the client's origin-form
	// target itself, the path and query of an absolute-form one, or "*".
	uri []byte
	// authority replaces the client's Host when the target was in
	// absolute-form; nil otherwise.
	authority []byte
}

var (
	errFragment     = errors.New("fragment in request target")
	errTargetForm   = errors.New("malformed request target")
	errAsterisk     = errors.New("asterisk-form target with a method other than OPTIONS")
	errScheme       = errors.New("absolute-form target with a scheme other than http or https")
	errUserinfo     = errors.New("userinfo in request target")
	errEmptyHost    = errors.New("absolute-form target without a host")
	asteriskURI     = []byte("*")
	rootURI         = []byte("/")
	schemeSeparator = []byte("://")
)

// parseTarget classifies the raw request target. fasthttp has already
// refused control bytes and spaces in it; CONNECT, whose authority-form
// target is the only other legal form, is answered before this is called.
func parseTarget(method, raw []byte) (target, error) {
	if bytes.IndexByte(raw, '#') >= 0 {
		return target{}, errFragment
	}
	if len(raw) > 0 && raw[0] == '/' {
		return target{uri: raw}, nil
	}
	if len(raw) == 1 && raw[0] == '*' {
		if string(method) != "OPTIONS" {
			return target{}, errAsterisk
		}
		return target{uri: asteriskURI}, nil
	}
	return parseAbsolute(method, raw)
}

func parseAbsolute(method, raw []byte) (target, error) {
	sep := bytes.Index(raw, schemeSeparator)
	if sep < 0 {
		return target{}, errTargetForm
	}
	if scheme := raw[:sep]; !equalFold(scheme, "http") && !equalFold(scheme, "https") {
		return target{}, errScheme
	}
	rest := raw[sep+len(schemeSeparator):]
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, pathQuery := rest[:end], rest[end:]
	if err := checkAuthority(authority); err != nil {
		return target{}, err
	}
	t := target{uri: pathQuery, authority: authority}
	switch {
	case len(pathQuery) == 0 && string(method) == "OPTIONS":
		// RFC 9112 3.2.4: the server-wide OPTIONS in absolute-form.
		t.uri = asteriskURI
	case len(pathQuery) == 0:
		t.uri = rootURI
	case pathQuery[0] == '?':
		// An empty path is "/" in origin-form; only this rare target
		// needs a copy to put the slash in front.
		t.uri = append([]byte{'/'}, pathQuery...)
	}
	return t, nil
}

// checkAuthority accepts host [":" port] with a non-empty host and no
// userinfo; the host's own syntax is the upstream's business.
func checkAuthority(a []byte) error {
	if bytes.IndexByte(a, '@') >= 0 {
		return errUserinfo
	}
	host := a
	if i := bytes.LastIndexByte(a, ':'); i >= 0 && bytes.IndexByte(a[i:], ']') < 0 {
		host = a[:i]
		for _, c := range a[i+1:] {
			if c < '0' || c > '9' {
				return errTargetForm
			}
		}
	}
	if len(host) == 0 {
		return errEmptyHost
	}
	return nil
}
