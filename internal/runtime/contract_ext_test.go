package runtime_test

import (
	"testing"

	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/contract"
)

// TestContract runs the runtime's contract on containerd; the model runtime
// runs the same.
func TestContract(t *testing.T) {
	contract.Run(t, contract.Subject{
		New: func(t *testing.T) runtime.Runtime { return runtime.ContractRuntime(t) },
		Instance: func(id string, b contract.Behaviour, policy runtime.RestartPolicy) runtime.Instance {
			return runtime.Instance{ID: id, RestartPolicy: policy,
				Containers: []runtime.Container{runtime.ContractScript(b.Log, b.RunFor, b.ExitCode)}}
		},
	})
}
