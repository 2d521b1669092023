// cnpg_shim drives the barman-cloud-* commands the way CloudNativePG does, for the
// integration test in ../cnpg.rs. It is our own reproduction, written from reading
// CloudNativePG's sources (the operator 1.25.1 with its barman-cloud library v0.1.0, and
// plugin-barman-cloud with the library's later releases): the same command lines, the
// same environment, the same parallel WAL archiving and prefetching with a spool, the same
// JSON decoding into Go's typed structs with the same time layouts, the same version
// regular expression and semver parse (the real github.com/blang/semver, from Debian), and
// the same exit-code classifications. It runs whichever commands come first on PATH, so
// the test runs it once over our binaries and once over Python Barman's.
//
// Configuration comes from the environment, as CloudNativePG's comes from the Cluster and
// ObjectStore resources:
//
//	CNPG_DESTINATION_PATH   destinationPath (s3://bucket/prefix)
//	CNPG_SERVER_NAME        serverName
//	CNPG_ENDPOINT_URL       endpointURL
//	CNPG_PGDATA             PGDATA of the instance (archive side)
//	CNPG_SPOOL              spool directory (parallel archive / prefetch)
//	CNPG_MAX_PARALLEL       wal.maxParallel
//	CNPG_WAL_COMPRESSION    wal.compression (gzip, bzip2, snappy, lz4, xz, zstd)
//	CNPG_DATA_COMPRESSION   data.compression
//	CNPG_DATA_JOBS          data.jobs
//	CNPG_BACKUP_EXTRA_ARGS  data.additionalCommandArgs, space separated
//	CNPG_RESTORE_EXTRA_ARGS wal.restoreAdditionalCommandArgs, space separated
//	CNPG_TAGS, CNPG_HISTORY_TAGS  tags / historyTags as "k=v k=v"
//	CNPG_TMPDIR             the backup temporary directory (TMPDIR of barman-cloud-backup)
//	CNPG_JOURNAL            file that receives one line per command run, with its exit code
//
// Build (Debian's golang-go and golang-github-blang-semver-dev, no module download):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o cnpg_shim cnpg_shim.go
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
)

// ---------------------------------------------------------------------------------------
// configuration and running commands

type config struct {
	destinationPath  string
	serverName       string
	endpointURL      string
	pgData           string
	spool            string
	maxParallel      int
	walCompression   string
	dataCompression  string
	dataJobs         string
	backupExtraArgs  []string
	restoreExtraArgs []string
	tags             []string
	historyTags      []string
	tmpDir           string
	journal          string
}

func loadConfig() config {
	maxParallel, _ := strconv.Atoi(os.Getenv("CNPG_MAX_PARALLEL"))
	if maxParallel < 1 {
		maxParallel = 1
	}
	return config{
		destinationPath:  os.Getenv("CNPG_DESTINATION_PATH"),
		serverName:       os.Getenv("CNPG_SERVER_NAME"),
		endpointURL:      os.Getenv("CNPG_ENDPOINT_URL"),
		pgData:           os.Getenv("CNPG_PGDATA"),
		spool:            os.Getenv("CNPG_SPOOL"),
		maxParallel:      maxParallel,
		walCompression:   os.Getenv("CNPG_WAL_COMPRESSION"),
		dataCompression:  os.Getenv("CNPG_DATA_COMPRESSION"),
		dataJobs:         os.Getenv("CNPG_DATA_JOBS"),
		backupExtraArgs:  strings.Fields(os.Getenv("CNPG_BACKUP_EXTRA_ARGS")),
		restoreExtraArgs: strings.Fields(os.Getenv("CNPG_RESTORE_EXTRA_ARGS")),
		tags:             barmanTags(os.Getenv("CNPG_TAGS")),
		historyTags:      barmanTags(os.Getenv("CNPG_HISTORY_TAGS")),
		tmpDir:           os.Getenv("CNPG_TMPDIR"),
		journal:          os.Getenv("CNPG_JOURNAL"),
	}
}

// barmanTags turns "k=v k2=v2" into Barman's "k,v" arguments, as the library's
// MapToBarmanTagsFormat does with the resource's map (sorted here, for stable journals).
func barmanTags(spec string) []string {
	var tags []string
	for _, pair := range strings.Fields(spec) {
		kv := strings.SplitN(pair, "=", 2)
		if len(kv) == 2 {
			tags = append(tags, kv[0]+","+kv[1])
		}
	}
	sort.Strings(tags)
	return tags
}

var journalMutex sync.Mutex

func (c config) record(line string) {
	if c.journal == "" {
		return
	}
	journalMutex.Lock()
	defer journalMutex.Unlock()
	f, err := os.OpenFile(c.journal, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cnpg_shim: journal: %v\n", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// result of one command run: its exit code (-1 if it could not start) and output.
type result struct {
	exitCode int
	stdout   string
	stderr   string
	err      error
}

// run executes a command as the library does (exec.Command, so found on PATH, with an
// explicit environment), records it in the journal and copies its stderr to ours.
func (c config) run(env []string, name string, args ...string) result {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var exitError *exec.ExitError
		if errors.As(err, &exitError) {
			code = exitError.ExitCode()
		} else {
			code = -1
		}
	}
	c.record(fmt.Sprintf("%s %s => %d", name, strings.Join(args, " "), code))
	os.Stderr.Write(stderr.Bytes())
	return result{exitCode: code, stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// cloudProviderOptions: AWS credentials configured, so "--cloud-provider aws-s3".
func cloudProviderOptions(options []string) []string {
	return append(options, "--cloud-provider", "aws-s3")
}

func (c config) endpointOptions(options []string) []string {
	if c.endpointURL != "" {
		options = append(options, "--endpoint-url", c.endpointURL)
	}
	return options
}

// ---------------------------------------------------------------------------------------
// version detection (barman-cloud v0.1.0, pkg/capabilities)

var barmanCloudVersionRegex = regexp.MustCompile("barman-cloud.* (?P<Version>.*)")

type capabilities struct {
	Output                     string   `json:"output"`
	Match                      string   `json:"match"`
	Version                    string   `json:"version"`
	HasName                    bool     `json:"has_name"`
	HasGoogle                  bool     `json:"has_google"`
	HasTags                    bool     `json:"has_tags"`
	HasCheckWalArchive         bool     `json:"has_check_wal_archive"`
	HasErrorCodesForWALRestore bool     `json:"has_error_codes_for_wal_restore"`
	HasErrorCodesForRestore    bool     `json:"has_error_codes_for_restore"`
	HasRetentionPolicy         bool     `json:"has_retention_policy"`
	Compressions               []string `json:"compressions"`
}

func detectVersion(c config, command string) (*capabilities, error) {
	cmd := exec.Command(command, "--version")
	out, err := cmd.CombinedOutput()
	c.record(fmt.Sprintf("%s --version => %d", command, cmd.ProcessState.ExitCode()))
	if err != nil {
		return nil, fmt.Errorf("while checking %s version: %w", command, err)
	}
	matches := barmanCloudVersionRegex.FindStringSubmatch(string(out))
	if matches == nil {
		// The operator indexes matches[1] here and would panic.
		return nil, fmt.Errorf("%s --version: %q does not match the version regex", command, out)
	}
	version, err := semver.ParseTolerant(matches[1])
	if err != nil {
		return nil, fmt.Errorf("while parsing %s version %q: %w", command, matches[1], err)
	}
	caps := &capabilities{Output: string(out), Match: matches[1], Version: version.String()}
	caps.Compressions = []string{"", "bzip2", "gzip"}
	if version.GE(semver.Version{Major: 3, Minor: 12}) {
		caps.Compressions = append(caps.Compressions, "lz4", "xz", "zstd")
	}
	caps.HasName = version.GE(semver.Version{Major: 3, Minor: 4})
	caps.HasGoogle = version.GE(semver.Version{Major: 2, Minor: 19})
	if version.GE(semver.Version{Major: 2, Minor: 18}) {
		caps.HasTags = true
		caps.HasCheckWalArchive = true
		caps.HasErrorCodesForWALRestore = true
		caps.HasErrorCodesForRestore = true
		caps.Compressions = append(caps.Compressions, "snappy")
	}
	caps.HasRetentionPolicy = version.GE(semver.Version{Major: 2, Minor: 14})
	return caps, nil
}

// ---------------------------------------------------------------------------------------
// WAL archiving (operator pkg/management/postgres/archiver, library pkg/archiver,
// pkg/walarchive, pkg/spool; machinery pkg/fileutils/wals)

const checkEmptyWalArchiveFile = ".check-empty-wal-archive"

func (c config) walArchiveOptions() []string {
	var options []string
	if c.walCompression != "" {
		options = append(options, "--"+c.walCompression)
	}
	options = c.endpointOptions(options)
	if len(c.tags) > 0 {
		options = append(append(options, "--tags"), c.tags...)
	}
	if len(c.historyTags) > 0 {
		options = append(append(options, "--history-tags"), c.historyTags...)
	}
	options = cloudProviderOptions(options)
	return append(options, c.destinationPath, c.serverName)
}

func (c config) checkWalArchiveOptions() []string {
	options := cloudProviderOptions(c.endpointOptions(nil))
	return append(options, c.destinationPath, c.serverName)
}

// gatherReadyWALFiles lists up to maxResults `.ready` files of archive_status in name
// order, skipping `skip`, as absolute pg_wal paths.
func gatherReadyWALFiles(pgData string, maxResults int, skip string) []string {
	entries, err := os.ReadDir(path.Join(pgData, "pg_wal", "archive_status"))
	if err != nil {
		return nil
	}
	var ready []string
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || !strings.HasSuffix(name, ".ready") {
			continue
		}
		if len(ready) >= maxResults {
			break
		}
		if strings.HasSuffix(name, path.Base(skip)+".ready") {
			continue
		}
		ready = append(ready, filepath.Join(pgData, "pg_wal", strings.TrimSuffix(name, ".ready")))
	}
	return ready
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// walArchive is the instance manager's `wal-archive %p` (archive_command).
func walArchive(c config, walName string) error {
	env := os.Environ()
	flag := path.Join(c.pgData, checkEmptyWalArchiveFile)
	if fileExists(flag) {
		if r := c.run(env, "barman-cloud-check-wal-archive", c.checkWalArchiveOptions()...); r.err != nil {
			return fmt.Errorf("unexpected failure invoking barman-cloud-check-wal-archive: %w", r.err)
		}
	}

	// Already pre-archived by a parallel run: only drop it from the spool.
	spooled := path.Join(c.spool, path.Base(walName))
	if fileExists(spooled) {
		c.record("spool: " + path.Base(walName) + " archived (parallel)")
		return os.Remove(spooled)
	}

	walNames := append([]string{walName}, gatherReadyWALFiles(c.pgData, c.maxParallel, walName)...)
	options := c.walArchiveOptions()
	errs := inParallel(len(walNames), func(i int) error {
		args := append(append([]string{}, options...), walNames[i])
		if r := c.run(env, "barman-cloud-wal-archive", args...); r.err != nil {
			return fmt.Errorf("unexpected failure invoking barman-cloud-wal-archive: %w", r.err)
		}
		if err := os.Remove(flag); err != nil && !os.IsNotExist(err) {
			return err
		}
		if i > 0 {
			f, err := os.Create(path.Join(c.spool, path.Base(walNames[i])))
			if err != nil {
				return err
			}
			f.Close()
		}
		return nil
	})
	// PostgreSQL hears only about the WAL it asked for; the others were an optimisation.
	return errs[0]
}

// ---------------------------------------------------------------------------------------
// WAL restore (operator internal/cmd/manager/walrestore, library pkg/restorer)

var (
	errWALNotFound          = errors.New("WAL not found")
	errConnectivity         = errors.New("connectivity failure")
	errInvalidWALName       = errors.New("invalid WAL name")
	errGeneric              = errors.New("generic error")
	errUnrecognizedExitCode = errors.New("unrecognized exit code")
)

func walRestoreError(exitCode int) error {
	switch exitCode {
	case 1:
		return errWALNotFound
	case 2:
		return errConnectivity
	case 3:
		return errInvalidWALName
	case 4:
		return errGeneric
	default:
		return errUnrecognizedExitCode
	}
}

// walRestoreOptions: options, then the positionals, then the additional arguments (which
// therefore come after DESTINATION and SERVER), then WAL and path.
func (c config) walRestoreOptions() []string {
	options := cloudProviderOptions(c.endpointOptions(nil))
	options = append(options, c.destinationPath, c.serverName)
	return append(options, c.restoreExtraArgs...)
}

func (c config) restoreOneWAL(walName, destination string) error {
	args := append(c.walRestoreOptions(), walName, destination)
	r := c.run(os.Environ(), "barman-cloud-wal-restore", args...)
	if r.err == nil {
		return nil
	}
	if r.exitCode < 0 {
		return r.err
	}
	err := walRestoreError(r.exitCode)
	c.record(fmt.Sprintf("classified %s exit %d: %v", walName, r.exitCode, err))
	return err
}

var walSegmentRe = regexp.MustCompile(`^[\dA-Fa-f]{8}[\dA-Fa-f]{8}[\dA-Fa-f]{8}$`)

// nextSegments: the requested segment and the following ones (16 MiB segments).
func nextSegments(walName string, count int) []string {
	tli, _ := strconv.ParseInt(walName[0:8], 16, 64)
	log, _ := strconv.ParseInt(walName[8:16], 16, 64)
	seg, _ := strconv.ParseInt(walName[16:24], 16, 64)
	var names []string
	for len(names) < count {
		names = append(names, fmt.Sprintf("%08X%08X%08X", tli, log, seg))
		seg++
		if seg > 0xFF {
			log++
			seg = 0
		}
	}
	return names
}

// walRestore is the instance manager's `wal-restore %f %p` (restore_command).
func walRestore(c config, walName, destination string) error {
	if err := os.MkdirAll(c.spool, 0o700); err != nil {
		return err
	}
	spooled := path.Join(c.spool, walName)
	if fileExists(spooled) {
		c.record("spool: " + walName + " restored from the spool")
		return os.Rename(spooled, destination)
	}
	walNames := []string{walName}
	if walSegmentRe.MatchString(walName) {
		walNames = nextSegments(walName, c.maxParallel)
	}
	errs := inParallel(len(walNames), func(i int) error {
		if i == 0 {
			return c.restoreOneWAL(walNames[i], destination)
		}
		// Prefetched segments land in a temporary name, made visible when whole.
		temp := path.Join(c.spool, walNames[i]+".tmp")
		if err := c.restoreOneWAL(walNames[i], temp); err != nil {
			os.Remove(temp)
			return err
		}
		return os.Rename(temp, path.Join(c.spool, walNames[i]))
	})
	return errs[0]
}

// inParallel runs work(0..n-1) in goroutines, as the library's ArchiveList and
// RestoreList do, and returns each one's error.
func inParallel(n int, work func(i int) error) []error {
	errs := make([]error, n)
	var wait sync.WaitGroup
	for i := 0; i < n; i++ {
		wait.Add(1)
		go func(i int) {
			defer wait.Done()
			errs[i] = work(i)
		}(i)
	}
	wait.Wait()
	return errs
}

// ---------------------------------------------------------------------------------------
// catalog (library pkg/catalog, pkg/command/backuplist.go)

type barmanBackup struct {
	BackupName         string    `json:"backup_name,omitempty"`
	Label              string    `json:"backup_label"`
	BeginTimeString    string    `json:"begin_time"`
	EndTimeString      string    `json:"end_time"`
	BeginTimeISOString string    `json:"begin_time_iso"`
	EndTimeISOString   string    `json:"end_time_iso"`
	BeginTime          time.Time `json:"-"`
	EndTime            time.Time `json:"-"`
	BeginWal           string    `json:"begin_wal"`
	EndWal             string    `json:"end_wal"`
	BeginLSN           string    `json:"begin_xlog"`
	EndLSN             string    `json:"end_xlog"`
	SystemID           string    `json:"systemid"`
	ID                 string    `json:"backup_id"`
	Error              string    `json:"error"`
	TimeLine           int       `json:"timeline"`
}

type catalog struct {
	List []barmanBackup `json:"backups_list"`
}

const barmanTimeLayout = "Mon Jan 2 15:04:05 2006"

func parseISOOrCtime(isoValue, ctimeOrISOValue string) (time.Time, error) {
	if isoValue != "" {
		return time.Parse(time.RFC3339, isoValue)
	}
	if ctimeOrISOValue != "" {
		if t, err := time.Parse(barmanTimeLayout, ctimeOrISOValue); err == nil {
			return t, nil
		} else if t, errISO := time.Parse(time.RFC3339, ctimeOrISOValue); errISO == nil {
			return t, nil
		} else {
			return t, err
		}
	}
	return time.Time{}, nil
}

func (b *barmanBackup) deserializeTimes() (err error) {
	if b.BeginTime, err = parseISOOrCtime(b.BeginTimeISOString, b.BeginTimeString); err != nil {
		return err
	}
	b.EndTime, err = parseISOOrCtime(b.EndTimeISOString, b.EndTimeString)
	return err
}

func (b *barmanBackup) isDone() bool {
	return !b.BeginTime.IsZero() && !b.EndTime.IsZero()
}

// The catalog's own order: by begin time, unfinished backups last.
func (c *catalog) Len() int      { return len(c.List) }
func (c *catalog) Swap(i, j int) { c.List[i], c.List[j] = c.List[j], c.List[i] }
func (c *catalog) Less(i, j int) bool {
	if c.List[i].BeginTime.IsZero() {
		return false
	}
	if c.List[i].EndTime.IsZero() {
		return true
	}
	return c.List[i].BeginTime.Before(c.List[j].EndTime)
}

func (c config) query(command string, extra ...string) (string, error) {
	options := c.endpointOptions([]string{"--format", "json"})
	options = cloudProviderOptions(options)
	options = append(append(options, c.destinationPath, c.serverName), extra...)
	r := c.run(os.Environ(), command, options...)
	if r.err != nil {
		return "", fmt.Errorf("%s: %w", command, r.err)
	}
	return r.stdout, nil
}

func (c config) backupList() (*catalog, error) {
	raw, err := c.query("barman-cloud-backup-list")
	if err != nil {
		return nil, err
	}
	result := &catalog{}
	if err := json.Unmarshal([]byte(raw), result); err != nil {
		return nil, fmt.Errorf("decoding barman-cloud-backup-list: %w", err)
	}
	for i := range result.List {
		if err := result.List[i].deserializeTimes(); err != nil {
			return nil, fmt.Errorf("backup %s times: %w", result.List[i].ID, err)
		}
	}
	sort.Sort(result)
	return result, nil
}

func (c config) backupShow(backupName string) (*barmanBackup, error) {
	raw, err := c.query("barman-cloud-backup-show", backupName)
	if err != nil {
		return nil, err
	}
	var show struct {
		Cloud barmanBackup `json:"cloud,omitempty"`
	}
	if err := json.Unmarshal([]byte(raw), &show); err != nil {
		return nil, fmt.Errorf("decoding barman-cloud-backup-show: %w", err)
	}
	if err := show.Cloud.deserializeTimes(); err != nil {
		return nil, err
	}
	return &show.Cloud, nil
}

func (c *catalog) latest() *barmanBackup {
	for i := len(c.List) - 1; i >= 0; i-- {
		if c.List[i].isDone() {
			return &c.List[i]
		}
	}
	return nil
}

func (c *catalog) firstRecoverabilityPoint() *time.Time {
	for i := range c.List {
		if c.List[i].isDone() {
			return &c.List[i].EndTime
		}
	}
	return nil
}

var currentTLIRegex = regexp.MustCompile("^(|latest)$")

// parseTargetTime accepts what recoveryTarget.targetTime accepts: PostgreSQL's timestamp
// forms, then RFC 3339 (with or without microseconds), then a bare local ISO time.
func parseTargetTime(value string) (time.Time, error) {
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999-07",
		"2006-01-02T15:04:05.000000Z07:00",
		time.RFC3339,
		"2006-01-02T15:04:05",
	} {
		if t, err := time.Parse(layout, value); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse target time %q", value)
}

// findBackup is Catalog.FindBackupInfo for a backup ID, a target time, or neither.
func (c *catalog) findBackup(backupID, targetTime, targetTLI string) (*barmanBackup, error) {
	if backupID != "" {
		for i := range c.List {
			if c.List[i].isDone() && c.List[i].ID == backupID {
				return &c.List[i], nil
			}
		}
		return nil, fmt.Errorf("no backup found with ID %s", backupID)
	}
	matchesTLI := func(b *barmanBackup) bool {
		return strconv.Itoa(b.TimeLine) == targetTLI || currentTLIRegex.MatchString(targetTLI)
	}
	var target time.Time
	if targetTime != "" {
		var err error
		if target, err = parseTargetTime(targetTime); err != nil {
			return nil, err
		}
	}
	for i := len(c.List) - 1; i >= 0; i-- {
		b := &c.List[i]
		if !b.isDone() || !matchesTLI(b) {
			continue
		}
		if targetTime == "" || !b.EndTime.After(target) {
			return b, nil
		}
	}
	return nil, nil
}

// ---------------------------------------------------------------------------------------
// backup, restore, delete (library pkg/backup, pkg/command; operator and plugin restore)

func (c config) backupOptions(backupName string) []string {
	options := []string{"--user", "postgres", "--name", backupName}
	if c.dataCompression != "" {
		options = append(options, "--"+c.dataCompression)
	}
	options = append(options, "--immediate-checkpoint")
	if c.dataJobs != "" {
		options = append(options, "--jobs", c.dataJobs)
	}
	options = append(options, c.backupExtraArgs...)
	if len(c.tags) > 0 {
		options = append(append(options, "--tags"), c.tags...)
	}
	options = cloudProviderOptions(c.endpointOptions(options))
	return append(options, c.destinationPath, c.serverName)
}

type restoreOutcome struct {
	ExitCode    int    `json:"exit_code"`
	Description string `json:"description"`
	Retriable   bool   `json:"retriable"`
}

// classifyRestore is UnmarshalBarmanCloudRestoreExitCode.
func classifyRestore(exitCode int) restoreOutcome {
	descriptions := map[int]string{
		1: "Operation error",
		2: "Network error",
		3: "CLI argument parsing error",
		4: "General error",
	}
	description, ok := descriptions[exitCode]
	if !ok {
		description = "Generic failure"
	}
	if exitCode == 0 {
		description = ""
	}
	return restoreOutcome{
		ExitCode:    exitCode,
		Description: description,
		Retriable:   exitCode == 2 || exitCode == 4,
	}
}

// restoreArgs: the operator 1.25.1 puts --cloud-provider between the backup ID and PGDATA;
// the plugin puts every option first.
func (c config) restoreArgs(flavour, backupID, pgData string) []string {
	if flavour == "operator" {
		options := c.endpointOptions(nil)
		options = append(options, c.destinationPath, c.serverName, backupID)
		options = cloudProviderOptions(options)
		return append(options, pgData)
	}
	options := cloudProviderOptions(nil)
	options = c.endpointOptions(options)
	return append(options, c.destinationPath, c.serverName, backupID, pgData)
}

// ---------------------------------------------------------------------------------------

func printJSON(value interface{}) {
	out, _ := json.MarshalIndent(value, "", "  ")
	fmt.Println(string(out))
}

func backupSummary(b *barmanBackup) map[string]interface{} {
	if b == nil {
		return nil
	}
	return map[string]interface{}{
		"id":         b.ID,
		"name":       b.BackupName,
		"begin_time": b.BeginTime.UTC().Format(time.RFC3339Nano),
		"end_time":   b.EndTime.UTC().Format(time.RFC3339Nano),
		"begin_wal":  b.BeginWal,
		"end_wal":    b.EndWal,
		"begin_lsn":  b.BeginLSN,
		"end_lsn":    b.EndLSN,
		"timeline":   b.TimeLine,
		"systemid":   b.SystemID,
		"error":      b.Error,
		"done":       b.isDone(),
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "cnpg_shim: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: cnpg_shim COMMAND ARGS...")
	}
	c := loadConfig()
	args := os.Args[2:]
	switch os.Args[1] {
	case "version":
		caps, err := detectVersion(c, args[0])
		if err != nil {
			fail("%v", err)
		}
		printJSON(caps)
	case "wal-archive":
		if err := walArchive(c, args[0]); err != nil {
			fail("%v", err)
		}
	case "wal-restore":
		if err := walRestore(c, args[0], args[1]); err != nil {
			// PostgreSQL sees a failure; the class goes to the journal.
			fail("%v", err)
		}
	case "check-wal-archive":
		r := c.run(os.Environ(), "barman-cloud-check-wal-archive", c.checkWalArchiveOptions()...)
		printJSON(map[string]int{"exit_code": r.exitCode})
	case "backup":
		env := append(os.Environ(), "TMPDIR="+c.tmpDir)
		r := c.run(env, "barman-cloud-backup", c.backupOptions(args[0])...)
		if r.exitCode == 3 {
			fail("invalid arguments for barman-cloud-backup. " +
				"Ensure that the additionalCommandArgs field is correctly populated")
		}
		if r.err != nil {
			fail("barman-cloud-backup: %v", r.err)
		}
		executed, err := c.backupShow(args[0])
		if err != nil {
			fail("%v", err)
		}
		printJSON(backupSummary(executed))
	case "list":
		cat, err := c.backupList()
		if err != nil {
			fail("%v", err)
		}
		var backups []map[string]interface{}
		for i := range cat.List {
			backups = append(backups, backupSummary(&cat.List[i]))
		}
		var first *string
		if point := cat.firstRecoverabilityPoint(); point != nil {
			s := point.UTC().Format(time.RFC3339Nano)
			first = &s
		}
		printJSON(map[string]interface{}{
			"backups":                    backups,
			"latest":                     backupSummary(cat.latest()),
			"first_recoverability_point": first,
		})
	case "find":
		// find BACKUP_ID TARGET_TIME TARGET_TLI (empty strings for unset)
		cat, err := c.backupList()
		if err != nil {
			fail("%v", err)
		}
		found, err := cat.findBackup(args[0], args[1], args[2])
		if err != nil {
			fail("%v", err)
		}
		printJSON(backupSummary(found))
	case "restore":
		// restore operator|plugin BACKUP_ID PGDATA [BEGIN_WAL]
		flavour, backupID, pgData := args[0], args[1], args[2]
		if flavour == "plugin" && len(args) > 3 {
			// ensureArchiveContainsLastCheckpointRedoWAL
			check := path.Join(c.tmpDir, "test.wal")
			err := c.restoreOneWAL(args[3], check)
			os.Remove(check)
			if err != nil {
				fail("encountered an error while checking the presence of first needed WAL in the archive: %v", err)
			}
		}
		r := c.run(os.Environ(), "barman-cloud-restore", c.restoreArgs(flavour, backupID, pgData)...)
		if r.exitCode < 0 {
			fail("barman-cloud-restore: %v", r.err)
		}
		printJSON(classifyRestore(r.exitCode))
	case "delete":
		// The resource's retentionPolicy, "30d" and the like.
		matches := regexp.MustCompile(`([1-9][0-9]*)([dwm])$`).FindStringSubmatch(args[0])
		if len(matches) < 3 {
			fail("not a valid policy")
		}
		unit := map[string]string{"d": "DAYS", "w": "WEEKS", "m": "MONTHS"}[matches[2]]
		options := cloudProviderOptions(c.endpointOptions(nil))
		options = append(options, "--retention-policy",
			fmt.Sprintf("RECOVERY WINDOW OF %v %v", matches[1], unit),
			c.destinationPath, c.serverName)
		r := c.run(os.Environ(), "barman-cloud-backup-delete", options...)
		printJSON(map[string]interface{}{"exit_code": r.exitCode, "stdout": r.stdout})
	case "keep":
		// keep BACKUP_ID OPTION... (not called by CloudNativePG; the same shape as its
		// other catalog calls: options first, then destination, server and backup)
		options := cloudProviderOptions(c.endpointOptions(nil))
		options = append(options, args[1:]...)
		options = append(options, c.destinationPath, c.serverName, args[0])
		r := c.run(os.Environ(), "barman-cloud-backup-keep", options...)
		printJSON(map[string]interface{}{"exit_code": r.exitCode, "stdout": r.stdout})
	default:
		fail("unknown command %s", os.Args[1])
	}
}
