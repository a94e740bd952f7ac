package openapi

import (
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// MaxListLen bounds the index of a list parameter (Container.N ...), so that
// a request cannot make the decoder allocate without bound.
const MaxListLen = 1000

// Decode fills the struct v points to from params, by the OpenAPI's flat
// encoding:
//
//   - a field's parameter is named by its `rpc` tag or, without one, by the
//     field's name; a tag may give aliases after '|' ("DefaultMode|DefaultModel")
//     and the option ",json" for a value that is JSON text (ContainerGroupIds
//     as `["eci-1","eci-2"]`); "-" leaves the field out;
//   - a struct field is Name.Field; a slice is Name.1, Name.2 ... (or
//     Name.1.Field for a slice of structs), numbered from 1 with no gap;
//   - strings, booleans ("true"/"false"), integers, finite floats and times
//     (2006-01-02T15:04:05Z or RFC 3339), and pointers to them.
//
// Parameters that name no field are left alone (common parameters, and
// what an SDK sends that the service does not use). A value that does not
// parse is an InvalidParameter *Error naming the parameter.
func Decode(params url.Values, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("openapi.Decode wants a pointer to a struct")
	}
	_, err := decodeStruct(params, "", rv.Elem())
	return err
}

// decodeStruct fills the fields of a struct from the parameters under
// prefix (empty at the top, else "Name." with its dot); it reports whether
// any parameter was found.
func decodeStruct(params url.Values, prefix string, v reflect.Value) (bool, error) {
	t := v.Type()
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("rpc")
		if tag == "-" {
			continue
		}
		names, isJSON := parseTag(tag, f.Name)
		for _, name := range names {
			ok, err := decodeField(params, prefix+name, v.Field(i), isJSON)
			if err != nil {
				return found, err
			}
			if ok {
				found = true
				break
			}
		}
	}
	return found, nil
}

func parseTag(tag, field string) (names []string, isJSON bool) {
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = field
	}
	return strings.Split(name, "|"), opts == "json"
}

// decodeField fills one value from the parameter named key (a scalar) or
// the parameters under key+"." (a struct or a list).
func decodeField(params url.Values, key string, v reflect.Value, isJSON bool) (bool, error) {
	if isJSON {
		raw, ok := params[key]
		if !ok {
			return false, nil
		}
		if err := json.Unmarshal([]byte(raw[0]), v.Addr().Interface()); err != nil {
			return false, InvalidParameter(key, "want JSON of "+v.Type().String()+": "+err.Error())
		}
		return true, nil
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		return decodeScalar(params, key, v)
	case v.Kind() == reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		ok, err := decodeField(params, key, elem.Elem(), false)
		if ok && err == nil {
			v.Set(elem)
		}
		return ok, err
	case v.Kind() == reflect.Struct:
		return decodeStruct(params, key+".", v)
	case v.Kind() == reflect.Slice:
		return decodeList(params, key, v)
	default:
		return decodeScalar(params, key, v)
	}
}

// decodeList fills a slice from key.1, key.2 ... (or key.1.Field ...).
func decodeList(params url.Values, key string, v reflect.Value) (bool, error) {
	prefix := key + "."
	n := 0
	seen := map[int]bool{}
	for k := range params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		seg, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(seg)
		if err != nil || i < 1 || seg[0] == '0' || seg[0] == '+' {
			return false, InvalidParameter(k, "the list index "+strconv.Quote(seg)+" is not a number from 1")
		}
		if i > MaxListLen {
			return false, InvalidParameter(k, "at most "+strconv.Itoa(MaxListLen)+" items")
		}
		seen[i] = true
		n = max(n, i)
	}
	if n == 0 {
		return false, nil
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			return false, InvalidParameter(prefix+strconv.Itoa(i), "missing: "+prefix+strconv.Itoa(n)+" is given, and the items are numbered from 1 with no gap")
		}
	}
	list := reflect.MakeSlice(v.Type(), n, n)
	for i := range n {
		if _, err := decodeField(params, prefix+strconv.Itoa(i+1), list.Index(i), false); err != nil {
			return false, err
		}
	}
	v.Set(list)
	return true, nil
}

// decodeScalar parses the parameter named key into v.
func decodeScalar(params url.Values, key string, v reflect.Value) (bool, error) {
	raw, ok := params[key]
	if !ok {
		return false, nil
	}
	s := raw[0]
	if v.Type() == reflect.TypeFor[time.Time]() {
		t, err := time.Parse(TimestampLayout, s)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, s); err != nil {
				return false, InvalidParameter(key, strconv.Quote(s)+" is not a time such as 2006-01-02T15:04:05Z")
			}
		}
		v.Set(reflect.ValueOf(t))
		return true, nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return false, InvalidParameter(key, strconv.Quote(s)+" is not true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return false, InvalidParameter(key, strconv.Quote(s)+" is not an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return false, InvalidParameter(key, strconv.Quote(s)+" is not a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return false, InvalidParameter(key, strconv.Quote(s)+" is not a finite number")
		}
		v.SetFloat(f)
	default:
		panic("openapi: cannot decode into " + v.Type().String())
	}
	return true, nil
}
