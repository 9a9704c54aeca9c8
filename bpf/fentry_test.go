package bpf

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// kernelWith returns BTF holding just the given functions, each returning a
// pointer and taking n pointer parameters.
func kernelWith(t *testing.T, params map[string]int) *btf.Spec {
	t.Helper()
	ptr := &btf.Pointer{Target: &btf.Void{}}
	var types []btf.Type
	for name, n := range params {
		proto := &btf.FuncProto{Return: ptr}
		for range n {
			proto.Params = append(proto.Params, btf.FuncParam{Name: "p", Type: ptr})
		}
		types = append(types, &btf.Func{Name: name, Type: proto, Linkage: btf.GlobalFunc})
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestFentryHooksBySignature(t *testing.T) {
	progs, err := loadProbes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		acceptArgs int
		want       string // program for inet_csk_accept; "" for an error
	}{
		{"before 6.10", 4, "fexit_accept_4args"},
		{"since 6.10", 2, "fexit_accept_2args"},
		{"unknown signature", 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := kernelWith(t, map[string]int{"inet_csk_accept": tc.acceptArgs, "tcp_v4_connect": 3})
			hs, err := fentryHooks(spec)
			if tc.want == "" {
				if !errors.Is(err, ebpf.ErrNotSupported) {
					t.Fatalf("got hooks %v, err %v; want ErrNotSupported", hs, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) != 2 || hs[0].prog != tc.want || hs[1].prog != "fexit_connect" {
				t.Fatalf("hooks %+v, want %s and fexit_connect", hs, tc.want)
			}
			for _, h := range hs {
				if progs.Programs[h.prog] == nil {
					t.Errorf("program %s is not in the object", h.prog)
				}
			}
		})
	}
	spec := kernelWith(t, map[string]int{"inet_csk_accept": 2, "tcp_v4_connect": 4})
	if _, err := fentryHooks(spec); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("tcp_v4_connect with 4 parameters: err %v, want ErrNotSupported", err)
	}
}

// The variant picked for this host must be the one written for the
// parameter count its BTF gives inet_csk_accept.
func TestFentryMatchesKernelBTF(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("skipping: no kernel BTF: %v", err)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var fn *btf.Func
	if err := spec.TypeByName("inet_csk_accept", &fn); err != nil {
		t.Fatal(err)
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		t.Fatalf("inet_csk_accept's BTF type is %T", fn.Type)
	}
	n := len(proto.Params)
	hs, err := modeHooks(ModeFentry)
	if err != nil {
		t.Fatal(err)
	}
	progs, err := loadProbes()
	if err != nil {
		t.Fatal(err)
	}
	accept := progs.Programs[hs[0].prog]
	if accept == nil || accept.AttachTo != "inet_csk_accept" {
		t.Fatalf("first fentry hook %q does not attach to inet_csk_accept", hs[0].prog)
	}
	want := map[int]string{2: "fexit_accept_2args", 4: "fexit_accept_4args"}[n]
	if hs[0].prog != want {
		t.Errorf("kernel's inet_csk_accept has %d parameters, picked %s, want %s", n, hs[0].prog, want)
	}
	t.Logf("inet_csk_accept has %d parameters here: %s", n, hs[0].prog)
}
