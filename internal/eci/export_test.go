package eci

import "context"

// RefuseWrites makes the service's own SQLite connection read-only (or
// writable again): the database then refuses every write, as a full disk
// or a broken file would.
func RefuseWrites(s *Service, refuse bool) error {
	pragma := "PRAGMA query_only = OFF"
	if refuse {
		pragma = "PRAGMA query_only = ON"
	}
	_, err := s.store.db.ExecContext(context.Background(), pragma)
	return err
}

// RefuseStart tells s that the runtime refused to start group id's
// containers, as the supervisor does.
func RefuseStart(s *Service, id string, err error) { s.startRefused(id, err) }
