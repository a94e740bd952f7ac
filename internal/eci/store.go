package eci

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver, no cgo

	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// store keeps everything the service must not lose in one SQLite file:
// groups, events, bill lines, price overrides and the clock's anchor. Every
// change of the market is written in one transaction before it is acted on.
type store struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
	id TEXT PRIMARY KEY,
	client_token TEXT UNIQUE,
	doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id TEXT NOT NULL,
	at INTEGER NOT NULL,
	type TEXT NOT NULL,
	reason TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_group ON events (group_id, seq);
CREATE TABLE IF NOT EXISTS bill_lines (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id TEXT NOT NULL,
	from_ns INTEGER NOT NULL,
	to_ns INTEGER NOT NULL,
	price REAL NOT NULL,
	amount REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bill_lines_group ON bill_lines (group_id, seq);
CREATE TABLE IF NOT EXISTS overrides (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	zone TEXT NOT NULL,
	type TEXT NOT NULL,
	price REAL,
	stock INTEGER,
	reset INTEGER NOT NULL
);
`

func openStore(ctx context.Context, path string) (*store, error) {
	if err := privateDB(path); err != nil {
		return nil, err
	}
	// WAL with synchronous=NORMAL: a commit survives a crash of the process
	// (the case that matters here) without an fsync per request.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; the service serialises access anyway
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// privateDB creates the database file with mode 0600 if it is missing, and
// takes group and other access from it and its WAL and SHM files (0644 before
// issue 19): they hold the instances' environment values, Secrets among them.
// SQLite gives a new WAL or SHM file the database's mode.
func privateDB(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("opening %s: %w", p, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&0o700); err != nil {
				return fmt.Errorf("making %s private: %w", p, err)
			}
		}
	}
	return nil
}

func (s *store) Close() error { return s.db.Close() }

func (s *store) meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading meta %s: %w", key, err)
	}
	return v, true, nil
}

func (s *store) setMeta(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("writing meta %s: %w", key, err)
	}
	return nil
}

// change is one transaction's worth of writes.
type change struct {
	groups    []*group
	events    []storedEvent
	lines     []market.BillLine
	overrides []prices.Override
	advanced  time.Time // market time the core has reached; zero: unchanged
}

type storedEvent struct {
	Group string
	eciapi.Event
}

func (s *store) write(ctx context.Context, c change) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback()
	for _, g := range c.groups {
		doc, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encoding group %s: %w", g.ID, err)
		}
		var token any
		if g.ClientToken != "" {
			token = g.ClientToken
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO groups (id, client_token, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, g.ID, token, doc); err != nil {
			return fmt.Errorf("writing group %s: %w", g.ID, err)
		}
	}
	for _, e := range c.events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (group_id, at, type, reason, message) VALUES (?, ?, ?, ?, ?)`,
			e.Group, e.Timestamp.UnixNano(), e.Type, e.Reason, e.Message); err != nil {
			return fmt.Errorf("writing event of %s: %w", e.Group, err)
		}
	}
	for _, l := range c.lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bill_lines (group_id, from_ns, to_ns, price, amount) VALUES (?, ?, ?, ?, ?)`,
			l.Instance, l.From.UnixNano(), l.To.UnixNano(), l.Price, l.Amount); err != nil {
			return fmt.Errorf("writing bill line of %s: %w", l.Instance, err)
		}
	}
	for _, o := range c.overrides {
		var price, stock any
		if o.Price != nil {
			price = *o.Price
		}
		if o.Stock != nil {
			stock = *o.Stock
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO overrides (at, zone, type, price, stock, reset) VALUES (?, ?, ?, ?, ?, ?)`,
			o.At.UnixNano(), o.Offering.Zone, o.Offering.Type.Name, price, stock, o.Reset); err != nil {
			return fmt.Errorf("writing override: %w", err)
		}
	}
	if !c.advanced.IsZero() {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('advanced', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			c.advanced.Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("writing market time: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func (s *store) groups(ctx context.Context) ([]*group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM groups`)
	if err != nil {
		return nil, fmt.Errorf("reading groups: %w", err)
	}
	defer rows.Close()
	var out []*group
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("reading groups: %w", err)
		}
		g := new(group)
		if err := json.Unmarshal(doc, g); err != nil {
			return nil, fmt.Errorf("decoding group: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// allEvents reads every event, by group, in order.
func (s *store) allEvents(ctx context.Context) (map[string][]eciapi.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT group_id, at, type, reason, message FROM events ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	defer rows.Close()
	out := map[string][]eciapi.Event{}
	for rows.Next() {
		var at int64
		var id string
		var e eciapi.Event
		if err := rows.Scan(&id, &at, &e.Type, &e.Reason, &e.Message); err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		e.Timestamp = time.Unix(0, at).UTC()
		out[id] = append(out[id], e)
	}
	return out, rows.Err()
}

func (s *store) billLines(ctx context.Context, groupID string) ([]market.BillLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT from_ns, to_ns, price, amount FROM bill_lines WHERE group_id = ? ORDER BY seq`, groupID)
	if err != nil {
		return nil, fmt.Errorf("reading bill of %s: %w", groupID, err)
	}
	defer rows.Close()
	var out []market.BillLine
	for rows.Next() {
		var from, to int64
		l := market.BillLine{Instance: groupID}
		if err := rows.Scan(&from, &to, &l.Price, &l.Amount); err != nil {
			return nil, fmt.Errorf("reading bill of %s: %w", groupID, err)
		}
		l.From, l.To = time.Unix(0, from).UTC(), time.Unix(0, to).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

type storedOverride struct {
	At         time.Time
	Zone, Type string
	Price      *float64
	Stock      *int
	Reset      bool
}

func (s *store) overrides(ctx context.Context) ([]storedOverride, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, zone, type, price, stock, reset FROM overrides ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("reading overrides: %w", err)
	}
	defer rows.Close()
	var out []storedOverride
	for rows.Next() {
		var at int64
		var price sql.NullFloat64
		var stock sql.NullInt64
		var o storedOverride
		if err := rows.Scan(&at, &o.Zone, &o.Type, &price, &stock, &o.Reset); err != nil {
			return nil, fmt.Errorf("reading overrides: %w", err)
		}
		o.At = time.Unix(0, at).UTC()
		if price.Valid {
			o.Price = &price.Float64
		}
		if stock.Valid {
			n := int(stock.Int64)
			o.Stock = &n
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
