package eci

// The model runtime's annotations. On a pod (the virtual node copies every
// annotation under ModelPrefix into its group's tags) or as tags of a group
// created through the OpenAPI, they say what the group's containers do when
// the service runs instances without processes (`--runtime model`). The
// containerd runtime ignores them.
const (
	// ModelPrefix starts every key of the model runtime.
	ModelPrefix = "model.spoteci.io/"
	// ModelRunFor is how long each run of a container lasts, a Go duration
	// ("90s", "1h"); without it a container runs until it is stopped.
	ModelRunFor = ModelPrefix + "run-for"
	// ModelExitCode is the code a run exits with after ModelRunFor, 0 to 255
	// (default 0).
	ModelExitCode = ModelPrefix + "exit-code"
	// ModelLog is a line each run of a container prints as it starts.
	ModelLog = ModelPrefix + "log"
)
