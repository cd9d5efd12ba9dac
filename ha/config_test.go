package ha

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMembershipConfigPresetsValidate(t *testing.T) {
	for name, cfg := range map[string]MembershipConfig{
		"default": DefaultMembershipConfig(),
		"local":   LocalMembershipConfig(),
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s preset without a node id: Validate() = %v, want ErrInvalidConfig", name, err)
		}
		cfg.Meta.NodeID = "n"
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s preset: Validate() = %v", name, err)
		}
	}
}

func TestMembershipConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*MembershipConfig)
		want string
	}{
		{"no name", func(c *MembershipConfig) { c.Meta.NodeID = "" }, "NodeName"},
		{"name without meta id", func(c *MembershipConfig) { c.NodeName, c.Meta.NodeID = "n", "" }, "empty NodeID"},
		{"bind host name", func(c *MembershipConfig) { c.BindAddr = "localhost" }, "BindAddr"},
		{"advertise garbage", func(c *MembershipConfig) { c.AdvertiseAddr = "1.2.3" }, "AdvertiseAddr"},
		{"bind port", func(c *MembershipConfig) { c.BindPort = 70000 }, "BindPort"},
		{"advertise port", func(c *MembershipConfig) { c.AdvertisePort = -1 }, "AdvertisePort"},
		{"meta too large", func(c *MembershipConfig) { c.Meta.Version = strings.Repeat("v", 600) }, "too large"},
		{"probe interval", func(c *MembershipConfig) { c.ProbeInterval = 0 }, "ProbeInterval"},
		{"probe timeout", func(c *MembershipConfig) { c.ProbeTimeout = c.ProbeInterval }, "below ProbeInterval"},
		{"gossip interval", func(c *MembershipConfig) { c.GossipInterval = -time.Second }, "GossipInterval"},
		{"tcp timeout", func(c *MembershipConfig) { c.TCPTimeout = 0 }, "TCPTimeout"},
		{"broadcast timeout", func(c *MembershipConfig) { c.BroadcastTimeout = 0 }, "BroadcastTimeout"},
		{"push pull", func(c *MembershipConfig) { c.PushPullInterval = -1 }, "PushPullInterval"},
		{"suspicion", func(c *MembershipConfig) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"gossip nodes", func(c *MembershipConfig) { c.GossipNodes = 0 }, "GossipNodes"},
		{"indirect", func(c *MembershipConfig) { c.IndirectChecks = -1 }, "IndirectChecks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := LocalMembershipConfig()
			cfg.Meta.NodeID = "n"
			tt.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}
