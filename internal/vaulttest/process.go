package vaulttest

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one running bin/vault server. It runs in its own process
// group, so ending it also ends the plugin processes Vault started, even
// when Vault itself had to be killed and could not stop them.
type process struct {
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{} // closed when the process has exited
}

// startProcess runs bin with args, appending its output to logPath (and to
// extra, when set). HOME points at home and VAULT_ADDR/VAULT_TOKEN are
// cleared, so the caller's own Vault settings never leak into the server.
func startProcess(bin string, args []string, home, logPath string, extra io.Writer) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	var out io.Writer = logFile
	if extra != nil {
		out = io.MultiWriter(logFile, extra)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "VAULT_ADDR=", "VAULT_TOKEN=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &process{cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks Vault to shut down (SIGINT) and kills its group if it has not
// exited within grace; a zero grace kills at once, as a crash would.
// Whatever is left of the group (plugin processes) is killed too.
func (p *process) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	if grace > 0 {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	_ = p.logFile.Close()
}
