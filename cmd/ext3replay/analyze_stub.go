package main

import (
	"errors"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// TEMPORARY: replaced by analyze.go
func analyzeToOps(imagePath, logPath string, metadata bool) ([]ops.Op, error) {
	return nil, errors.New("analyze not available yet")
}
