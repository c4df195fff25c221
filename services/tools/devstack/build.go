package devstack

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
)

// CommandDir is the folder of a command's main, by path under services/: a
// service keeps its main in its own folder (validate/cmd/validate), the other
// commands sit under cmd/ (docs/architecture.md, The tree).
func CommandDir(name string) string {
	if slices.Contains(ServiceNames, name) {
		return name + "/cmd/" + name
	}
	return "cmd/" + name
}

// Build builds the named commands into dir. servicesDir is the module's root
// (services/), relative to the working directory or absolute.
func Build(ctx context.Context, servicesDir, dir string, names ...string) error {
	args := []string{"build", "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "./"+CommandDir(n))
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = servicesDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", names, err, out)
	}
	return nil
}
