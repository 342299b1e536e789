package main

import "strings"

// usage is what a wrong command line gets, on standard error.
const usage = `usage: ipcchan ls [-gone] [-json] [DIR...]
       ipcchan rm [-n] [-all-users] [DIR...]
       ipcchan fingerprint [-codec NAME] TYPE
       ipcchan help [COMMAND]
`

const helpIntro = `ipcchan finds and removes the kernel objects that ipcchan programs made
and that may outlive them, and prints what a program in another language
needs to speak to an ipcchan channel.

` + usage + `
An object's owner is the process that made it: its pid is in the name of
a POSIX object (/ipcchan-PID-LABEL-RANDOM, endpoints.ObjectName) and in the
key of a SysV one (0x6C000000 to 0x6FFFFFFF, endpoints.ObjectKey). "Owner
gone" means that no process with that pid runs any more (a zombie counts as
gone): nobody will remove the object, which stays in the kernel until
someone does — rm, or a reboot. "In use" means that the owner still runs.
A Unix socket file has no pid: its owner is gone when nobody holds the
flock on its ".lock" file beside it, that is, when no listener is left.
The pid proves nothing (anyone may name an object so): rm removes only the
objects of the user running it, unless root asks for all.

Exit status: 0 when all went well, 1 when something could not be read or
removed, 2 for a wrong command line.
`

var commandHelp = map[string]string{
	"ls": `usage: ipcchan ls [-gone] [-json] [DIR...]

ls lists the ipcchan objects in the kernel: POSIX shared memory (/dev/shm),
semaphores and queues, SysV queues, semaphore sets and segments, and the
Unix socket files of ipcchan listeners in each DIR given. Both the objects
whose owner runs and those whose owner is gone are listed, one a line:

    KIND  uid UID  pid PID  STATE  FILL  NAME

STATE is "in use" or "owner gone" (see ipcchan help). PID is "-" where the
object records none (a socket file). FILL is how full the object is:
"3/10 msgs" for a POSIX queue (mq_curmsgs/mq_maxmsg), "3 msgs 120/16384 B"
for a SysV queue (msg_qnum, msg_cbytes/msg_qbytes), "ring 128/4096 B" for
shared memory holding a ring (bytes not yet received/the data area, read
from the ring's header, which is checked, never trusted), "4096 B" for
other shared memory, "?" where it cannot be read, "-" for the rest. With
nothing found it prints "no ipcchan objects".

POSIX queues are in the mqueue file system at /dev/mqueue. Where it is not
mounted, ls (run as root) mounts it privately, in a mount namespace of its
own that the rest of the system does not see; without root it says on
standard error that it could not look at the queues.

  -gone   list only the objects whose owner is gone; with none, standard
          output stays empty (the "nothing found" line goes to standard
          error), so that a script can test for it
  -json   print one JSON document instead of lines:

    {
      "objects": [
        {
          "kind": "posix shm" | "semaphore" | "posix mq" | "sysv mq" |
                  "sysv sem" | "sysv shm" | "socket",
          "name": string,        // path, queue name, or "key 0x… id N"
          "owner_pid": int,      // 0: none recorded (socket files)
          "owner_alive": bool,   // false: owner gone
          "uid": int,            // the user it belongs to
          "size": int,           // shared memory: bytes (if read)
          "posix_mq": {"messages": int, "max_messages": int,
                       "message_size": int},          // POSIX queues
          "sysv_mq": {"messages": int, "bytes": int,
                      "max_bytes": int},              // SysV queues
          "ring": {"used": int, "size": int},         // shared memory
                                                      // holding a ring
          "fill_error": string   // why the fill could not be read
        }
      ],
      "notes": [string],         // what was not looked at, and why
      "errors": [string]         // what could not be read (status 1)
    }

    Fields that do not apply are left out; the three lists are always
    there, empty as [].
`,
	"rm": `usage: ipcchan rm [-n] [-all-users] [DIR...]

rm removes every ipcchan object whose owner is gone (see ipcchan help) and
that belongs to the user running it, and the stale socket files in each
DIR. It says "removed", "would remove" or "skipped" with the object's ls
line. An object is checked again just before it is removed: one replaced
or taken again meanwhile is left alone. It opens nothing that could block
or lead elsewhere: no symbolic link, no FIFO, nothing but regular lock
files, without waiting. POSIX queues are found as ls finds them.

  -n           say what would be removed, remove nothing
  -all-users   as root, remove other users' objects too; without it
               another user's object is skipped, whatever pid it holds
`,
	"fingerprint": `usage: ipcchan fingerprint [-codec NAME] TYPE

fingerprint prints the description and fingerprint (PROTOCOL.md §4) of a
type written as a Go type expression ('struct{ ID uint32; Temp float64 }',
'[]byte', 'map[string]int'; a named type is written as its underlying
type), and with -codec the hello a channel of that type opens with, alone
and as a frame: what a program in another language must send and expect.

  -codec NAME  the codec's name: bytes, string, binary-le, binary-be,
               cstruct, ctext, json, gob, binary-marshaler
`,
	"help": `usage: ipcchan help [COMMAND]

help explains ipcchan and every command, or only COMMAND (ls, rm,
fingerprint, help); so do ipcchan -h, ipcchan --help and ipcchan COMMAND -h.
`,
}

// fullHelp is what ipcchan help prints: the introduction and every
// command's help.
func fullHelp() string {
	var b strings.Builder
	b.WriteString(helpIntro)
	for _, cmd := range []string{"ls", "rm", "fingerprint", "help"} {
		b.WriteString("\n")
		b.WriteString(commandHelp[cmd])
	}
	return b.String()
}
