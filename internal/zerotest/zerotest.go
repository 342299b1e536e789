// Package zerotest checks that values a user may declare rather than make —
// the zero value of an exported type, or a nil pointer to one — make every
// method return an error or a harmless result, never panic or hang.
package zerotest

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// Check calls every exported method of every value in values with zero
// arguments (context.Background() for a context, a function that does
// nothing for a function, nil or zero for the rest), and fails t if a call
// panics or has not returned within a few seconds. Pass both the zero value
// (&T{}) and a nil pointer ((*T)(nil)) of each type. Through a nil pointer
// only the methods with pointer receivers are called: Go panics on a value
// method called through nil, whatever the method does.
func Check(t *testing.T, values ...any) {
	t.Helper()
	for _, v := range values {
		rv := reflect.ValueOf(v)
		typ := rv.Type()
		name := typ.String()
		isNil := rv.Kind() == reflect.Pointer && rv.IsNil()
		if isNil {
			name = "nil " + name
		}
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			if !m.IsExported() {
				continue
			}
			if _, byValue := typ.Elem().MethodByName(m.Name); isNil && byValue {
				continue // Go itself panics calling a value method through nil
			}
			call(t, name+"."+m.Name, rv.Method(i))
		}
	}
}

var ctxType = reflect.TypeFor[context.Context]()

func call(t *testing.T, name string, fn reflect.Value) {
	t.Helper()
	ft := fn.Type()
	args := make([]reflect.Value, ft.NumIn())
	for i := range args {
		in := ft.In(i)
		switch {
		case ft.IsVariadic() && i == len(args)-1:
			args[i] = reflect.Zero(in) // an empty variadic slice
		case in == ctxType:
			args[i] = reflect.ValueOf(context.Background())
		case in.Kind() == reflect.Func:
			args[i] = reflect.MakeFunc(in, func([]reflect.Value) []reflect.Value {
				out := make([]reflect.Value, in.NumOut())
				for j := range out {
					out[j] = reflect.Zero(in.Out(j))
				}
				return out
			})
		default:
			args[i] = reflect.Zero(in)
		}
	}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		var results []reflect.Value
		if ft.IsVariadic() {
			results = fn.CallSlice(args)
		} else {
			results = fn.Call(args)
		}
		for _, r := range results {
			// An iterator returned (All) is run: that is where it works.
			if r.Kind() == reflect.Func && r.Type().NumIn() == 1 && r.Type().In(0).Kind() == reflect.Func {
				yield := reflect.MakeFunc(r.Type().In(0), func(a []reflect.Value) []reflect.Value {
					return []reflect.Value{reflect.ValueOf(false)}
				})
				r.Call([]reflect.Value{yield})
			}
		}
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Errorf("%s on a value nobody made panics: %v", name, p)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s on a value nobody made has not returned after 5 s", name)
	}
}
