package sim

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Progress hears how far a long simulation has come. Implementations must be
// safe for concurrent use: sweeps report from several goroutines.
type Progress interface {
	// Start announces total units of work.
	Start(total int)
	// Add reports n more units done.
	Add(n int)
	// Done says the work is over.
	Done()
}

// Bar is a Progress drawn as a text bar on a terminal (stderr: never the
// data on stdout). It redraws only when the shown percentage changes, so it
// costs nothing per unit and reads no clock.
type Bar struct {
	w     io.Writer
	label string

	mu          sync.Mutex
	total, done int
	shown       int // percentage last drawn; -1 before the first draw
}

var _ Progress = (*Bar)(nil)

// NewBar returns a bar that writes to w, led by label.
func NewBar(w io.Writer, label string) *Bar { return &Bar{w: w, label: label, shown: -1} }

// Start implements Progress.
func (b *Bar) Start(total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total, b.done, b.shown = total, 0, -1
	b.draw()
}

// Add implements Progress.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.draw()
}

// Done implements Progress.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shown >= 0 {
		fmt.Fprintln(b.w)
	}
	b.shown = -1
}

func (b *Bar) draw() {
	if b.total <= 0 {
		return
	}
	pct := min(100, 100*b.done/b.total)
	if pct == b.shown {
		return
	}
	b.shown = pct
	const width = 30
	fill := width * pct / 100
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%% %d/%d", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, b.done, b.total)
}

// NoProgress is a Progress that shows nothing.
type NoProgress struct{}

// Start implements Progress.
func (NoProgress) Start(int) {}

// Add implements Progress.
func (NoProgress) Add(int) {}

// Done implements Progress.
func (NoProgress) Done() {}
