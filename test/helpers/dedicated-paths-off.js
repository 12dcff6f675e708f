// Setup of the jest project that runs the protocol files with the dedicated paths off: every server a
// test of that project starts gets DEDICATED_PATHS=false (see startServer in server.ts).
process.env.DEDICATED_PATHS = 'false';
