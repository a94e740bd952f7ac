// Command attacker is the hostile tenant of the tenant tests: it runs in a
// pod and tries what a tenant should not be able to do, printing one JSON
// line per attempt ({"attack": ..., "target": ..., "result": ...}) for the
// test to read from the pod's log. It judges nothing itself.
//
//	attacker probe PORT,PORT,...   raw SYNs to 127.0.0.1 through the gateway,
//	                               TCP connects to the gateway, and the
//	                               apiserver through the kubernetes service
//	attacker caps                  the capabilities and a raw socket
//	attacker forkbomb HOLD         processes until the kernel refuses one,
//	                               kept for HOLD (a duration)
//	attacker fill PATH MIB         MIB MiB written to PATH, then an hour's sleep
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// result is one attempt and what came of it.
type result struct {
	Attack string `json:"attack"`
	Target string `json:"target"`
	Result string `json:"result"`
}

func report(attack, target, res string) {
	b, _ := json.Marshal(result{attack, target, res})
	fmt.Println(string(b))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: attacker probe PORTS | caps | forkbomb HOLD | fill PATH MIB")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "probe":
		var ports []int
		if len(os.Args) > 2 {
			for _, f := range strings.Split(os.Args[2], ",") {
				if p, err := strconv.Atoi(f); err == nil {
					ports = append(ports, p)
				}
			}
		}
		probe(ports)
	case "caps":
		caps()
	case "forkbomb":
		hold, _ := time.ParseDuration(os.Args[2])
		forkbomb(hold)
	case "fill":
		mib, _ := strconv.Atoi(os.Args[3])
		fill(os.Args[2], mib)
	case "hold":
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stderr, "unknown attack", os.Args[1])
		os.Exit(2)
	}
	fmt.Println(`{"attack":"done"}`)
}

// probe tries every port three ways. Raw SYNs show whether the host takes
// packets for 127.0.0.0/8 from an instance (CVE-2020-8558): "answered"
// means a SYN-ACK or RST came back. Connects to the gateway show whether
// the host's own addresses answer: "answered" is a connection or a refusal
// (an RST), "silent" a timeout. The apiserver is the one thing a pod must
// reach.
func probe(ports []int) {
	gw, err := gateway()
	if err != nil {
		report("gateway", "", "error: "+err.Error())
	}
	if gw != nil {
		for _, p := range ports {
			target := net.JoinHostPort(gw.String(), strconv.Itoa(p))
			c, err := net.DialTimeout("tcp", target, 700*time.Millisecond)
			switch {
			case err == nil:
				c.Close()
				report("connect-gateway", target, "answered")
			case errors.Is(err, unix.ECONNREFUSED):
				report("connect-gateway", target, "answered")
			default:
				report("connect-gateway", target, "silent")
			}
		}
		rawSYNs(gw, ports)
	}
	apiserver()
}

// gateway is the default route's next hop, from /proc/net/route.
func gateway() (net.IP, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 2 && fs[1] == "00000000" {
			v, err := strconv.ParseUint(fs[2], 16, 32)
			if err != nil {
				return nil, err
			}
			ip := make(net.IP, 4)
			binary.LittleEndian.PutUint32(ip, uint32(v))
			return ip, nil
		}
	}
	return nil, errors.New("no default route")
}

// rawSYNs sends a SYN for each port to 127.0.0.1 in an Ethernet frame to the
// gateway's MAC, then listens for answers from 127.0.0.1 for two seconds.
func rawSYNs(gw net.IP, ports []int) {
	eth, err := net.InterfaceByName("eth0")
	if err != nil {
		report("raw-syn", "", "error: "+err.Error())
		return
	}
	src, err := ownIPv4(eth)
	if err != nil {
		report("raw-syn", "", "error: "+err.Error())
		return
	}
	mac, err := gatewayMAC(gw)
	if err != nil {
		report("raw-syn", "", "error: "+err.Error())
		return
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
	if err != nil {
		report("raw-syn", "", "refused: "+err.Error()) // no NET_RAW
		return
	}
	defer unix.Close(fd)
	ll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: eth.Index}
	if err := unix.Bind(fd, ll); err != nil {
		report("raw-syn", "", "error: "+err.Error())
		return
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: eth.Index, Halen: 6}
	copy(to.Addr[:], mac)
	sport := uint16(40000 + rand.IntN(20000))
	loopback := net.IPv4(127, 0, 0, 1).To4()
	// Three rounds, as a TCP client retransmits: one lost SYN must not
	// pass for a silent host.
	go func() {
		for round := range 3 {
			time.Sleep(time.Duration(round) * 300 * time.Millisecond)
			for _, p := range ports {
				if err := unix.Sendto(fd, synPacket(src, loopback, sport, uint16(p)), 0, to); err != nil {
					report("raw-syn-send", fmt.Sprintf("127.0.0.1:%d", p), "error: "+err.Error())
				}
			}
		}
	}()
	answered := map[int]string{}
	deadline := time.Now().Add(2500 * time.Millisecond)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		tv := unix.NsecToTimeval(int64(time.Until(deadline)))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			break
		}
		pkt := buf[:n]
		if len(pkt) < 40 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP || !net.IP(pkt[12:16]).Equal(loopback) {
			continue
		}
		tcp := pkt[int(pkt[0]&0xf)*4:]
		if len(tcp) < 14 || binary.BigEndian.Uint16(tcp[2:4]) != sport {
			continue
		}
		flags := tcp[13]
		switch {
		case flags&0x12 == 0x12:
			answered[int(binary.BigEndian.Uint16(tcp[0:2]))] = "answered: SYN-ACK"
		case flags&0x04 != 0:
			answered[int(binary.BigEndian.Uint16(tcp[0:2]))] = "answered: RST"
		}
	}
	for _, p := range ports {
		res, ok := answered[p]
		if !ok {
			res = "silent"
		}
		report("raw-syn", fmt.Sprintf("127.0.0.1:%d", p), res)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func ownIPv4(eth *net.Interface) (net.IP, error) {
	addrs, err := eth.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, errors.New("eth0 has no IPv4 address")
}

// gatewayMAC makes the kernel resolve the gateway (a datagram to it) and
// reads its MAC from the neighbour table.
func gatewayMAC(gw net.IP) (net.HardwareAddr, error) {
	if c, err := net.Dial("udp", net.JoinHostPort(gw.String(), "9")); err == nil {
		c.Write([]byte("x"))
		c.Close()
	}
	for range 50 {
		b, err := os.ReadFile("/proc/net/arp")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) >= 4 && fs[0] == gw.String() && fs[3] != "00:00:00:00:00:00" {
				return net.ParseMAC(fs[3])
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("the gateway %s's MAC is not in /proc/net/arp", gw)
}

// synPacket is an IPv4 packet carrying a TCP SYN.
func synPacket(src, dst net.IP, sport, dport uint16) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], rand.Uint32())
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := append(append(append([]byte{}, src...), dst...), 0, unix.IPPROTO_TCP, 0, byte(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], checksum(append(pseudo, tcp...)))
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(tcp)))
	binary.BigEndian.PutUint16(ip[4:], uint16(rand.IntN(65536)))
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	copy(ip[12:], src)
	copy(ip[16:], dst)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, tcp...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// apiserver asks the kubernetes service for /version with the pod's token:
// any HTTP status is an answer.
func apiserver() {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	target := net.JoinHostPort(host, port)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// Reachability is the question here, not the certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	req, _ := http.NewRequest("GET", "https://"+target+"/version", nil)
	if tok, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := client.Do(req)
	if err != nil {
		report("apiserver", target, "silent: "+err.Error())
		return
	}
	resp.Body.Close()
	report("apiserver", target, "answered: "+resp.Status)
}

// caps reports the effective capabilities, no_new_privs and whether a raw
// socket can be opened.
func caps() {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		report("caps", "", "error: "+err.Error())
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "CapEff" || k == "CapBnd" || k == "NoNewPrivs" || k == "Uid") {
			report("status", k, strings.TrimSpace(v))
		}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		report("raw-socket", "", "refused: "+err.Error())
		return
	}
	unix.Close(fd)
	report("raw-socket", "", "opened")
}

// forkbomb starts processes (each one this program, asleep) until one is
// refused, reports how many it got and holds them for hold. They die with
// the container.
func forkbomb(hold time.Duration) {
	defer time.Sleep(hold)
	started := 0
	for started < 100000 {
		cmd := exec.Command("/proc/self/exe", "hold")
		if err := cmd.Start(); err != nil {
			report("forkbomb", strconv.Itoa(started), "refused: "+err.Error())
			return
		}
		started++
	}
	report("forkbomb", strconv.Itoa(started), "never refused")
}

// fill writes mib MiB to path, reports, and sleeps so that whatever
// measures the disk has time to see it.
func fill(path string, mib int) {
	f, err := os.Create(path)
	if err != nil {
		report("fill", path, "error: "+err.Error())
		return
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(rand.IntN(256)) // not a sparse or compressible file
	}
	written := 0
	for ; written < mib; written++ {
		if _, err := f.Write(buf); err != nil {
			report("fill", path, fmt.Sprintf("refused after %d MiB: %v", written, err))
			return
		}
	}
	f.Sync()
	report("fill", path, fmt.Sprintf("wrote %d MiB", written))
	time.Sleep(time.Hour)
}
