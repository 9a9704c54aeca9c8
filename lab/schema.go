package lab

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaBase is the $id prefix of the JSON Schemas in the repository.
const schemaBase = "https://github.com/proxylab/proxylab/"

// ValidateResults checks a results file against results/schema.json (which
// refers to scenarios/schema.json for the echoed scenario) in the checkout
// at root.
func ValidateResults(root, path string) error {
	c := jsonschema.NewCompiler()
	for _, rel := range []string{"results/schema.json", "scenarios/schema.json"} {
		doc, err := readJSON(filepath.Join(root, rel))
		if err != nil {
			return err
		}
		if err := c.AddResource(schemaBase+rel, doc); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	sch, err := c.Compile(schemaBase + "results/schema.json")
	if err != nil {
		return err
	}
	inst, err := readJSON(path)
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s does not match results/schema.json: %w", path, err)
	}
	return nil
}

func readJSON(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
