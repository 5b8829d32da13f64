package ops

// Flusher is a Writer whose buffered lines can be pushed out before Close: a live run (analyze
// --follow, record --analyze) flushes whenever it waits for input, so that each line comes
// out as soon as it is certain. The text, jsonl and csv writers implement it.
type Flusher interface {
	Flush() error
}

// Flush writes out the lines buffered so far.
func (t *textWriter) Flush() error { return t.w.Flush() }

// Flush writes out the lines buffered so far.
func (j *jsonlWriter) Flush() error { return j.w.Flush() }

// Flush writes out the rows buffered so far (the header row only once a row was written).
func (c *csvWriter) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}
