package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// InfoFile is the name of the file in a state folder that tells clients
// where the local registry listens.
const InfoFile = "registry.json"

// Info is the content of <state-dir>/registry.json.
type Info struct {
	Address string // "127.0.0.1:PORT"
}

// WriteInfo writes info to <stateDir>/registry.json in one rename.
func WriteInfo(stateDir string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(stateDir, InfoFile), append(b, '\n'), 0o600)
}

// ReadInfo reads <stateDir>/registry.json. A missing file is an error that
// wraps fs.ErrNotExist and says what to run.
func ReadInfo(stateDir string) (Info, error) {
	path := filepath.Join(stateDir, InfoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return Info{}, fmt.Errorf("no %s in %s: is `spoteci up --state-dir %s` running? (or pass --registry): %w", InfoFile, stateDir, stateDir, err)
		}
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if info.Address == "" {
		return Info{}, fmt.Errorf("%s: no Address", path)
	}
	return info, nil
}
