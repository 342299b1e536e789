package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
)

// fingerprint runs the fingerprint command: it describes a type written as
// a Go type expression by the rules of PROTOCOL.md §4 — which is what a
// program in another language implements — and prints the description,
// the fingerprint and, with -codec, the hello.
func fingerprint(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fingerprint", stderr)
	codecName := fs.String("codec", "", "the codec's name (bytes, string, binary-le, binary-be, cstruct, ctext, json, gob, binary-marshaler): print the hello too")
	if status := parse(fs, "fingerprint", args, stdout, stderr); status >= 0 {
		return status
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: ipcchan fingerprint [-codec NAME] 'struct{ ID uint32; Temp float64 }'")
		return 2
	}
	desc, err := describeExpr(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "ipcchan fingerprint: %v\n", err)
		return 1
	}
	h := fnv.New64a()
	h.Write([]byte(desc))
	fp := h.Sum64()
	fmt.Fprintf(stdout, "description %s\nfingerprint %#016x\n", desc, fp)
	if *codecName == "" {
		return 0
	}
	if len(*codecName) > 255 {
		fmt.Fprintln(stderr, "ipcchan fingerprint: a codec name is at most 255 bytes")
		return 1
	}
	hello := helloPayload(*codecName, fp)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hello)))
	frame = binary.BigEndian.AppendUint32(frame, helloTag)
	fmt.Fprintf(stdout, "hello       % x\nframe       % x\n", hello, append(frame, hello...))
	return 0
}

// helloTag is the tag of the hello frame (PROTOCOL.md §3).
const helloTag = 0x7FFFFFFF

// helloPayload lays out a hello as PROTOCOL.md §3 specifies it.
func helloPayload(codecName string, fp uint64) []byte {
	b := []byte("IPCCHAN\x00")
	b = binary.BigEndian.AppendUint16(b, 1)
	b = append(b, byte(len(codecName)))
	b = append(b, codecName...)
	return binary.BigEndian.AppendUint64(b, fp)
}

// describeExpr returns the description of the type the Go type expression
// src denotes. Only what an expression can say is understood: predeclared
// types, arrays, slices, maps, pointers and struct literals (a named type
// of a program is described by its underlying type: write that).
func describeExpr(src string) (string, error) {
	expr, err := parser.ParseExpr(src)
	if err != nil {
		return "", fmt.Errorf("not a Go type expression: %v", err)
	}
	var b strings.Builder
	if err := describeAST(&b, expr); err != nil {
		return "", err
	}
	return b.String(), nil
}

// kinds maps the predeclared types to the kinds their descriptions use.
var kinds = map[string]string{
	"bool": "bool", "string": "string", "uintptr": "uintptr",
	"int": "int", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
	"uint": "uint", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
	"float32": "float32", "float64": "float64", "complex64": "complex64", "complex128": "complex128",
	"byte": "uint8", "rune": "int32", "any": "interface", "error": "interface",
}

func describeAST(b *strings.Builder, e ast.Expr) error {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return describeAST(b, e.X)
	case *ast.Ident:
		k, ok := kinds[e.Name]
		if !ok {
			return fmt.Errorf("%s: not a predeclared type: write a named type's underlying type", e.Name)
		}
		b.WriteString(k)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "unsafe" && e.Sel.Name == "Pointer" {
			b.WriteString("unsafe.Pointer")
			return nil
		}
		return fmt.Errorf("%s.%s: not a predeclared type: write a named type's underlying type", e.X, e.Sel.Name)
	case *ast.StarExpr:
		b.WriteString("*")
		return describeAST(b, e.X)
	case *ast.ArrayType:
		if e.Len == nil {
			b.WriteString("[]")
			return describeAST(b, e.Elt)
		}
		n, err := arrayLen(e.Len)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "[%d]", n)
		return describeAST(b, e.Elt)
	case *ast.MapType:
		b.WriteString("map[")
		if err := describeAST(b, e.Key); err != nil {
			return err
		}
		b.WriteString("]")
		return describeAST(b, e.Value)
	case *ast.ChanType:
		b.WriteString("chan")
	case *ast.FuncType:
		b.WriteString("func")
	case *ast.InterfaceType:
		b.WriteString("interface")
	case *ast.StructType:
		return describeStruct(b, e)
	default:
		return fmt.Errorf("%T: not a type this command describes", e)
	}
	return nil
}

func describeStruct(b *strings.Builder, s *ast.StructType) error {
	b.WriteString("struct{")
	for _, f := range s.Fields.List {
		names := f.Names
		if len(names) == 0 { // an embedded field is named by its type
			name, err := embeddedName(f.Type)
			if err != nil {
				return err
			}
			names = []*ast.Ident{{Name: name}}
		}
		for _, name := range names {
			b.WriteString(name.Name + " ")
			if err := describeAST(b, f.Type); err != nil {
				return err
			}
			b.WriteString(";")
		}
	}
	b.WriteString("}")
	return nil
}

func embeddedName(e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name, nil
	case *ast.StarExpr:
		return embeddedName(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name, nil
	}
	return "", errors.New("an embedded field that is not a type name")
}

func arrayLen(e ast.Expr) (int64, error) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.INT {
		return 0, errors.New("an array length must be a decimal constant")
	}
	n, err := strconv.ParseInt(lit.Value, 0, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("array length %s: want a non-negative integer", lit.Value)
	}
	return n, nil
}
