package xvmsim

// Importing the vAPI simulator registers its REST endpoints (sessions, tags
// and categories, tag associations, content libraries) with every simulator
// server started with Service.RegisterEndpoints set, as startVC does. The
// endpoints live on the simulator's own listener, so they are reached
// through the front door like SOAP, and a REST login is checked against the
// same enforced username and password (the Listen URL's userinfo).
import _ "github.com/vmware/govmomi/vapi/simulator"
