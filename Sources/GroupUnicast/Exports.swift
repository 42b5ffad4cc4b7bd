// The SystemPackage types in GroupUnicast's public API, re-exported so that `import GroupUnicast`
// alone is enough to use them (`Errno.messageTooLong`, `socket.fileDescriptor.rawValue`).
@_exported import struct SystemPackage.Errno
@_exported import struct SystemPackage.FileDescriptor
