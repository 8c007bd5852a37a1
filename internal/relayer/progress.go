package relayer

import (
	"fmt"
	"io"
	"time"
)

// progress writes a one-line progress display while catching up: it
// starts when the relayer is more than progressMinBehind blocks behind and
// ends (with a newline) once it has caught up.
type progress struct {
	w       io.Writer
	active  bool
	start   time.Time
	from    int64
	last    time.Time
	lastLen int
}

const progressMinBehind = 100

func (p *progress) update(done, target int64) {
	now := time.Now()
	if !p.active {
		if target-done < progressMinBehind {
			return
		}
		p.active, p.start, p.from = true, now, done
	}
	if now.Sub(p.last) < 250*time.Millisecond {
		return
	}
	p.last = now
	p.print(done, target, now)
}

func (p *progress) print(done, target int64, now time.Time) {
	pct := 100.0
	if target > 0 {
		pct = 100 * float64(max(done, 0)) / float64(target)
	}
	line := fmt.Sprintf("pherry: catching up: block %d of %d (%.1f%%)", done, target, pct)
	if el := now.Sub(p.start).Seconds(); el > 0.5 && done > p.from {
		rate := float64(done-p.from) / el
		line += fmt.Sprintf(", %.0f blocks/s", rate)
		if left := target - done; left > 0 {
			line += fmt.Sprintf(", ~%s left", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	pad := max(p.lastLen-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.lastLen = len(line)
}

// finish prints the final state and ends the display, if one is shown.
func (p *progress) finish(done, target int64) {
	if !p.active {
		return
	}
	p.print(done, target, time.Now())
	p.active = false
	p.lastLen = 0
	p.last = time.Time{}
	fmt.Fprintln(p.w)
}
