package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Encode is Decode's inverse: the flat parameters of the struct v (or a
// pointer to it), named by the first name of each field's `rpc` tag. Zero
// scalars, nil pointers and empty lists are left out, as an SDK leaves out
// what it was not given; a non-nil pointer is sent even to a zero value.
func Encode(v any) (map[string]string, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("openapi.Encode wants a struct, not %T", v)
	}
	out := map[string]string{}
	if err := encodeStruct(out, "", rv); err != nil {
		return nil, err
	}
	return out, nil
}

func encodeStruct(out map[string]string, prefix string, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("rpc")
		if !f.IsExported() || tag == "-" {
			continue
		}
		names, isJSON := parseTag(tag, f.Name)
		if err := encodeField(out, prefix+names[0], v.Field(i), isJSON, false); err != nil {
			return err
		}
	}
	return nil
}

// encodeField writes v under key; forced sends a zero scalar (the target of
// a pointer, an item of a list).
func encodeField(out map[string]string, key string, v reflect.Value, isJSON, forced bool) error {
	if isJSON {
		if v.IsZero() {
			return nil
		}
		data, err := json.Marshal(v.Interface())
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		out[key] = string(data)
		return nil
	}
	if t, ok := v.Interface().(time.Time); ok {
		if !t.IsZero() || forced {
			out[key] = t.UTC().Format(TimestampLayout)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encodeField(out, key, v.Elem(), false, true)
	case reflect.Struct:
		return encodeStruct(out, key+".", v)
	case reflect.Slice:
		if v.Len() > MaxListLen {
			return fmt.Errorf("encoding %s: %d items, at most %d", key, v.Len(), MaxListLen)
		}
		for i := range v.Len() {
			if err := encodeField(out, key+"."+strconv.Itoa(i+1), v.Index(i), false, true); err != nil {
				return err
			}
		}
		return nil
	}
	if v.IsZero() && !forced {
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		out[key] = v.String()
	case reflect.Bool:
		out[key] = strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		out[key] = strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out[key] = strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		out[key] = strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits())
	default:
		return fmt.Errorf("openapi: cannot encode %s of %s", key, v.Type())
	}
	return nil
}
