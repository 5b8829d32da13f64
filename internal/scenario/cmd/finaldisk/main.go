// Command finaldisk writes a scenario's final disk: its starting image (image.raw.zst) with every write
// of its native log (io.log.zst) applied in order. A scenario whose scenario.env says START_FROM=NAME
// starts from NAME's final disk (fixtures/capture/common.sh make_image): a second boot of a guest
// after the first one's power cut.
//
//	go run ./internal/scenario/cmd/finaldisk SCENARIO_DIR OUT.img
package main

import (
	"fmt"
	"os"

	"github.com/ext3replay/ext3replay/internal/scenario"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: finaldisk SCENARIO_DIR OUT.img")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "finaldisk:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	d, err := scenario.FinalDisk(dir, "io.log.zst")
	if err != nil {
		return err
	}
	return os.WriteFile(out, d, 0o644)
}
